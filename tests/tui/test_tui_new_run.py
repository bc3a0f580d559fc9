"""Pilot tests of the New run screen: examples, inline validation, the form, save, launch."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import Input, OptionList, Static, TabbedContent, TextArea

from stillhouse.tui.screens.new_run import NewRunScreen
from stillhouse.tui.screens.run_detail import RunDetailScreen
from tests.tui.helpers import drive, notified, screen_text, shows, wait_for


async def new_run(pilot) -> NewRunScreen:
    await pilot.press("2")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, NewRunScreen))
    return pilot.app.screen


def validation(app) -> str:
    return str(app.screen.query_one("#validation", Static).render())


async def choose_example(pilot, screen: NewRunScreen) -> None:
    options = screen.query_one("#examples", OptionList)
    await wait_for(pilot, lambda: options.option_count > 0)
    options.focus()
    options.highlighted = 0
    await pilot.press("enter")
    await wait_for(pilot, lambda: "✓ valid" in validation(pilot.app), what="example validated")


def test_example_loads_and_validates(stillhouse_home: Path, examples_dir: Path, make_app) -> None:
    app = make_app(stillhouse_home)

    async def scenario(pilot) -> None:
        screen = await new_run(pilot)
        assert screen.query_one("#examples", OptionList).get_option_at_index(0).prompt == "tiny-nli"
        await choose_example(pilot, screen)
        assert screen.query_one(TextArea).text == (examples_dir / "tiny-nli.toml").read_text()
        assert "task nli · teacher litellm:openai/gpt-4o-mini · student hf:HuggingFaceTB/SmolLM2-135M-Instruct" in validation(app)

    drive(app, scenario)


def test_typing_a_wrong_key_shows_the_clis_error_inline(stillhouse_home: Path, examples_dir: Path, make_app) -> None:
    app = make_app(stillhouse_home)

    async def scenario(pilot) -> None:
        screen = await new_run(pilot)
        await choose_example(pilot, screen)
        editor = screen.query_one(TextArea)
        line = next(i for i, text in enumerate(editor.text.splitlines()) if text.startswith("learning_rate"))
        editor.focus()
        editor.move_cursor((line, len("learning_rat")))
        await pilot.press("delete")  # learning_rate -> learning_rat
        await wait_for(pilot, lambda: "Invalid configuration" in validation(app), what="error shown")
        message = validation(app)
        assert "unknown key 'train.learning_rat' (did you mean 'learning_rate'?)" in message
        assert f"tiny-nli.toml:{line + 1}" in message  # the same file:line the CLI prints
        assert screen.query_one("#validation", Static).has_class("error")
        await pilot.press("ctrl+l")  # an invalid config is not launched
        await notified(pilot, "fix the config first")
        assert not (stillhouse_home / "runs").exists()
        await pilot.press("e")  # fixed again
        await wait_for(pilot, lambda: "✓ valid" in validation(app))

    drive(app, scenario)


def test_toml_syntax_error_names_the_line(stillhouse_home: Path, examples_dir: Path, make_app) -> None:
    app = make_app(stillhouse_home)

    async def scenario(pilot) -> None:
        screen = await new_run(pilot)
        await choose_example(pilot, screen)
        editor = screen.query_one(TextArea)
        editor.focus()
        editor.move_cursor((1, 0))
        await pilot.press(*"name = ", "enter")
        await wait_for(pilot, lambda: "not valid TOML" in validation(app))
        assert "tiny-nli.toml:2" in validation(app)

    drive(app, scenario)


def test_form_fills_from_and_writes_to_the_editor(stillhouse_home: Path, examples_dir: Path, make_app) -> None:
    app = make_app(stillhouse_home)

    async def scenario(pilot) -> None:
        screen = await new_run(pilot)
        await choose_example(pilot, screen)
        screen.query_one(TabbedContent).active = "form-tab"
        epochs = screen.query_one("#form-train-num_epochs", Input)
        await wait_for(pilot, lambda: epochs.value == "1")
        assert screen.query_one("#form-teacher-model", Input).value == "openai/gpt-4o-mini"
        epochs.value = "4"
        screen.query_one("#form-student-model", Input).value = "Qwen/Qwen2.5-0.5B-Instruct"
        screen.query_one("#form-apply").focus()
        await pilot.press("enter")
        await wait_for(pilot, lambda: screen.query_one(TabbedContent).active == "editor-tab")
        text = screen.query_one(TextArea).text
        assert "num_epochs = 4\n" in text and 'model = "Qwen/Qwen2.5-0.5B-Instruct"' in text  # as typed
        await wait_for(pilot, lambda: "✓ valid" in validation(app) and "Qwen" in validation(app))
        # A value of the wrong kind is refused with the field named, and the editor is untouched.
        screen.query_one(TabbedContent).active = "form-tab"
        await wait_for(pilot, lambda: epochs.value == "4")
        epochs.value = "four"
        await pilot.press("ctrl+w")
        await notified(pilot, "'train.num_epochs' must be a float")
        assert "num_epochs = 4\n" in screen.query_one(TextArea).text

    drive(app, scenario)


def test_save_writes_under_the_home_and_open_reads_any_file(stillhouse_home: Path, examples_dir: Path, make_app, tmp_path: Path) -> None:
    app = make_app(stillhouse_home)
    other = tmp_path / "elsewhere.toml"
    other.write_text((examples_dir / "tiny-nli.toml").read_text().replace("tiny-nli", "elsewhere"))

    async def scenario(pilot) -> None:
        screen = await new_run(pilot)
        await choose_example(pilot, screen)
        await pilot.press("ctrl+s")
        saved = stillhouse_home / "configs" / "tiny-nli.toml"
        await wait_for(pilot, saved.exists)
        assert saved.read_text() == screen.query_one(TextArea).text
        assert (examples_dir / "tiny-nli.toml").read_text() == saved.read_text()  # the example untouched
        await pilot.press("ctrl+o")
        assert isinstance(app.focused, Input)
        await pilot.press(*str(other), "enter")
        await wait_for(pilot, lambda: 'name = "elsewhere"' in screen.query_one(TextArea).text)
        await shows(pilot, "data.train file not found")  # data/ is beside the example, not this file

    drive(app, scenario)


def test_launch_starts_still_run_and_opens_the_run(stillhouse_home: Path, examples_dir: Path, make_app) -> None:
    """A real `still run` process; its teacher folder is missing, so it fails within seconds, and
    the TUI shows that run with the CLI's reason."""
    config = examples_dir / "tiny-nli.toml"
    config.write_text(config.read_text().replace('model = "openai/gpt-4o-mini"', 'model = "hf//no/such/teacher-folder"'))
    app = make_app(stillhouse_home)

    async def scenario(pilot) -> None:
        screen = await new_run(pilot)
        await choose_example(pilot, screen)
        await pilot.press("ctrl+l")
        await wait_for(pilot, lambda: isinstance(app.screen, RunDetailScreen), timeout=60, what="run opened")
        run_dir = stillhouse_home / "runs" / app.screen.run_id
        assert (run_dir / "config.toml").exists()
        await shows(pilot, "local teacher model not found", timeout=60)
        assert "failed" in screen_text(app)
        logs = list((stillhouse_home / "logs").glob("*.log"))
        assert len(logs) == 1 and "local teacher model not found" in logs[0].read_text()

    drive(app, scenario)
