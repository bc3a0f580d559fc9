"""No keyboard traps (issue 18): every path a person takes with the keyboard, driven with Pilot."""

from __future__ import annotations

import csv
from pathlib import Path

from textual.widgets import Input, Select, TabbedContent, Tabs, TextArea

from stillhouse.testing.sample_runs import standard_runs
from stillhouse.tui.screens.confirm import ConfirmScreen
from stillhouse.tui.screens.new_run import NewRunScreen, edit_toml
from stillhouse.tui.screens.runs import RunsScreen
from stillhouse.tui.screens.sql import SqlScreen
from stillhouse.tui.widgets.paged_table import PagedTable
from stillhouse.tui.widgets.samples import SamplesBrowser
from tests.tui.helpers import drive, highlight_row, notified, wait_for
from tests.tui.test_tui_new_run import choose_example, new_run
from tests.tui.test_tui_run_detail import open_run

RUNS = {s.name: s for s in standard_runs()}


def test_tab_leaves_the_config_editor_and_reaches_the_form(stillhouse_home: Path, examples_dir: Path, make_app) -> None:
    app = make_app(stillhouse_home)

    async def scenario(pilot) -> None:
        screen = await new_run(pilot)
        await choose_example(pilot, screen)
        editor = screen.query_one("#config-editor", TextArea)
        assert editor.has_focus
        before = editor.text
        for _ in range(8):  # on through the focus chain until the Editor/Form tabs
            await pilot.press("tab")
            if isinstance(app.focused, Tabs):
                break
        assert editor.text == before and "\t" not in editor.text  # no tab character typed
        assert isinstance(app.focused, Tabs)
        await pilot.press("right")
        await wait_for(pilot, lambda: screen.query_one(TabbedContent).active == "form-tab")

    drive(app, scenario)


def test_ctrl_w_writes_the_form_even_from_a_focused_input(stillhouse_home: Path, examples_dir: Path, make_app) -> None:
    app = make_app(stillhouse_home)

    async def scenario(pilot) -> None:
        screen = await new_run(pilot)
        await choose_example(pilot, screen)
        editor = screen.query_one("#config-editor", TextArea)
        editor.load_text("# my comment\n" + editor.text.replace("num_epochs = 1", "num_epochs = 1  # short"))
        screen.query_one(TabbedContent).active = "form-tab"
        epochs = screen.query_one("#form-train-num_epochs", Input)
        await wait_for(pilot, lambda: epochs.value == "1")
        epochs.focus()
        await pilot.pause()
        epochs.value = "3"
        await pilot.press("ctrl+w")
        await wait_for(pilot, lambda: screen.query_one(TabbedContent).active == "editor-tab")
        assert epochs.value == "3"  # not "delete word" in the input
        text = editor.text
        assert "num_epochs = 3  # short" in text and text.startswith("# my comment\n")  # edited in place

    drive(app, scenario)


def test_writing_the_form_keeps_comments_and_number_spelling() -> None:
    text = '# top\nname = "a"  # the name\n\n[train]\nlearning_rate = 2e-4\nnum_epochs = 1\n'
    edited = edit_toml(text, {"train.num_epochs": "2", "teacher.model": "openai/x"})
    assert edited is not None
    assert "learning_rate = 2e-4\nnum_epochs = 2\n" in edited and '# top\nname = "a"  # the name' in edited
    assert '[teacher]\nmodel = "openai/x"' in edited
    assert "learning_rate = 3e-5" in (edit_toml(text, {"train.learning_rate": "3e-5"}) or "")
    assert "name" not in (edit_toml(text, {"name": ""}) or "").split("[train]")[0].replace("# the name", "")
    assert edit_toml("task: nli\n", {"name": "x"}) is None  # YAML: not edited as TOML


def test_switching_example_with_unsaved_edits_asks_first(stillhouse_home: Path, examples_dir: Path, make_app) -> None:
    app = make_app(stillhouse_home)

    async def scenario(pilot) -> None:
        screen = await new_run(pilot)
        await choose_example(pilot, screen)
        editor = screen.query_one("#config-editor", TextArea)
        editor.insert("# mine\n", (0, 0))
        screen.open_unless_edited(examples_dir / "tiny-nli.toml")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="asked")
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, NewRunScreen))
        assert editor.text.startswith("# mine\n")
        screen.open_unless_edited(examples_dir / "tiny-nli.toml")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await wait_for(pilot, lambda: not editor.text.startswith("# mine"), what="example reopened")

    drive(app, scenario)


def test_escape_leaves_the_sql_editor_so_digits_switch_screens(fixture_home: Path, make_app, tmp_path: Path) -> None:
    app = make_app(fixture_home)

    async def scenario(pilot) -> None:
        await pilot.press("4")
        await wait_for(pilot, lambda: isinstance(app.screen, SqlScreen))
        screen = app.screen
        editor = screen.query_one("#sql-editor", TextArea)
        editor.load_text("select run_id, name from runs order by run_id")
        editor.focus()
        await pilot.press("ctrl+a")
        assert editor.selected_text == editor.text  # select-all, as in every other editor
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: screen.result is not None)
        await pilot.press("ctrl+s")
        await notified(pilot, "exports")
        (exported,) = (fixture_home / "exports").glob("query-*.csv")
        rows = list(csv.reader(exported.open()))
        assert rows[0] == ["run_id", "name"] and len(rows) == 1 + len(RUNS)
        editor.focus()
        await pilot.press("escape")
        assert not editor.has_focus
        await pilot.press("1")
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen), what="digit switched screens")
        assert "1" not in editor.text.split("run_id")[0]

    drive(app, scenario)


def test_digits_switch_tabs_after_using_the_samples_dropdown(fixture_home: Path, make_app) -> None:
    app = make_app(fixture_home)

    async def scenario(pilot) -> None:
        screen = await open_run(pilot, RUNS["qa"].run_id)
        await pilot.press("3")
        browser = screen.query_one(SamplesBrowser)
        await wait_for(pilot, lambda: browser.samples, what="samples loaded")
        select = screen.query_one("#samples-verdict", Select)
        select.focus()
        await pilot.press("enter", "down", "enter")  # open, next option, choose
        await wait_for(pilot, lambda: select.value != "all", what="a verdict chosen")
        await pilot.press("1")
        await wait_for(pilot, lambda: screen.query_one(TabbedContent).active == "overview", what="tab 1")

    drive(app, scenario)


def test_x_on_a_finished_run_says_so_without_asking(fixture_home: Path, make_app) -> None:
    app = make_app(fixture_home)
    done = RUNS["nli-mini"].run_id

    async def scenario(pilot) -> None:
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen) and app.screen.loaded)
        table = app.screen.query_one(PagedTable)
        row = next(i for i in range(table.row_count) if str(table.coordinate_to_cell_key((i, 0)).row_key.value) == done)
        await highlight_row(pilot, "#runs-table", row)
        await pilot.press("x")
        await notified(pilot, f"run {done} is not running (completed)")
        assert not isinstance(app.screen, ConfirmScreen)
        await pilot.press("y")
        await notified(pilot, done)
        assert app.clipboard == done

    drive(app, scenario)


def test_palette_screenshot_is_saved_under_the_home_and_named(fixture_home: Path, make_app) -> None:
    app = make_app(fixture_home)

    async def scenario(pilot) -> None:
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen) and app.screen.loaded)
        saved = app.deliver_screenshot()  # what the palette's "Screenshot" command calls
        assert saved is not None and Path(saved).parent == fixture_home / "screenshots"
        assert Path(saved).read_text().startswith("<svg")
        await notified(pilot, saved)

    drive(app, scenario)


def test_evaluation_ratios_say_better_or_worse() -> None:
    from stillhouse.kernel.comparison import Cell
    from stillhouse.tui.widgets.evaluation import ratio_text, verdict

    slower = Cell(-104.8, "104.8% higher")
    assert verdict("student_vs_teacher", "latency", slower) == "worse"
    text = ratio_text("student_vs_teacher", "latency", slower)
    assert text.plain == "104.8% higher (worse)" and "red" in str(text.spans[0].style)
    assert verdict("student_vs_teacher", "parameters", Cell(12.9, "12.9× smaller")) == "better"
    assert verdict("student_vs_baseline", "task", Cell(0.32, "+32.0 pts")) == "better"
    assert verdict("student_vs_teacher", "task", Cell(96.0, "96.0% retained")) is None


def test_compare_shows_where_long_values_differ_and_tells_same_names_apart() -> None:
    from types import SimpleNamespace

    from stillhouse.tui.screens.compare import column_names, differing_parts

    a = "/home/someone/projects/distil/data/nli/train-small.jsonl"
    b = "/home/someone/projects/distil/data/nli/train-large.jsonl"
    shown = differing_parts([a, b], 30)
    assert all(len(v) <= 30 for v in shown)
    assert "small" in shown[0] and "large" in shown[1] and shown[0].startswith("…")
    assert differing_parts(["2e-05", "0.0001"], 30) == ["2e-05", "0.0001"]
    runs = [SimpleNamespace(name="nli", run_id="20261120-090000-nli-a001"), SimpleNamespace(name="nli", run_id="20261121-090000-nli-a002")]
    assert column_names(runs) == ["nli (a001)", "nli (a002)"]
    assert column_names(runs[:1]) == ["nli"]
