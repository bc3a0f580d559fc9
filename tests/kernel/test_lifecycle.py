"""RunLifecycle: the events and hooks around a run's stages, how a run ended, and the stop request.
A real run folder and a real plugin host with a hook-recording plugin; no mocks."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from stillhouse.kernel import hookimpl
from stillhouse.kernel.errors import ConfigError, StageError
from stillhouse.kernel.lifecycle import (
    EXIT_COMPLETED,
    EXIT_CRASH,
    EXIT_INCOMPLETE,
    EXIT_INTERRUPTED,
    RunLifecycle,
    StopRequested,
    install_sigint,
)
from stillhouse.kernel.runs import Run


class HookRecorder:
    """A plugin that records every lifecycle hook call."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    @hookimpl
    def run_started(self, run: Run) -> None:
        self.calls.append(("run_started", run.id))

    @hookimpl
    def stage_finished(self, run: Run, stage: str, summary: dict[str, Any]) -> None:
        self.calls.append(("stage_finished", stage))

    @hookimpl
    def run_finished(self, run: Run, status: str) -> None:
        self.calls.append(("run_finished", status))


@pytest.fixture
def hooks() -> HookRecorder:
    return HookRecorder()


@pytest.fixture
def life(make_host, hooks: HookRecorder, stillhouse_home: Path) -> RunLifecycle:
    host = make_host(hooks, entry_points=False)
    return RunLifecycle(Run.create("life", {"task": "nli"}, stillhouse_home), host)


def types(life: RunLifecycle) -> list[str]:
    return [e["type"] for e in life.run.events()]


def last_event(life: RunLifecycle) -> dict[str, Any]:
    return list(life.run.events())[-1]


def test_stage_events_and_hooks_come_in_order(life: RunLifecycle, hooks: HookRecorder) -> None:
    printed: list[str] = []
    life.on_event = lambda event: printed.append(event["type"])
    with life.start(task="nli", stages=["generate", "filter"]):
        with life.stage("generate") as stage:
            life.emit("progress", stage="generate", done=1, total=1)
            stage.summary = {"requests": 1}
        with life.stage("filter"):
            pass
    expected = [
        "run_started",
        "stage_started",
        "progress",
        "stage_finished",
        "stage_started",
        "stage_finished",
        "run_finished",
    ]
    assert types(life) == expected
    assert printed == expected  # every recorded event reaches the progress printer too
    events = list(life.run.events())
    assert events[0]["task"] == "nli" and events[0]["pid"] == os.getpid()
    assert events[3]["summary"] == {"requests": 1} and events[5]["summary"] == {}
    assert hooks.calls == [
        ("run_started", life.run.id),
        ("stage_finished", "generate"),
        ("stage_finished", "filter"),
        ("run_finished", "completed"),
    ]
    assert life.ending is not None
    assert (life.ending.kind, life.ending.status, life.ending.exit_code) == ("completed", "completed", EXIT_COMPLETED)


def test_a_stage_with_work_left_ends_the_run_incomplete(life: RunLifecycle) -> None:
    with life.start():
        with life.stage("generate") as stage:
            stage.summary = {"incomplete": True, "failed": 2}
        with life.stage("filter") as stage:
            stage.summary = {"incomplete": True}
    assert life.incomplete == {"generate": "2 teacher call(s) failed", "filter": "unfinished work"}
    assert life.ending is not None
    assert (life.ending.status, life.ending.exit_code) == ("incomplete", EXIT_INCOMPLETE)
    assert last_event(life)["error"] == (
        f"generate: 2 teacher call(s) failed; filter: unfinished work (still run --resume {life.run.id} retries them)"
    )


def test_a_user_error_fails_the_stage_and_the_run_with_its_own_exit_code(
    life: RunLifecycle, hooks: HookRecorder
) -> None:
    with pytest.raises(ConfigError), life.start(), life.stage("train"):
        raise ConfigError("bad option")
    assert types(life)[-2:] == ["stage_failed", "run_finished"]
    assert list(life.run.events())[-2]["error"] == "bad option"
    assert life.ending is not None
    assert (life.ending.kind, life.ending.status, life.ending.error, life.ending.exit_code) == (
        "user_error",
        "failed",
        "bad option",
        2,
    )
    assert hooks.calls[-1] == ("run_finished", "failed")
    assert ("stage_finished", "train") not in hooks.calls


def test_an_error_that_is_not_bad_input_keeps_exit_code_1(life: RunLifecycle) -> None:
    with pytest.raises(StageError), life.start(), life.stage("train"):
        raise StageError("nothing to train on")
    assert life.ending is not None
    assert (life.ending.kind, life.ending.exit_code) == ("user_error", 1)


def test_a_crash_records_the_exception_type(life: RunLifecycle) -> None:
    with pytest.raises(ZeroDivisionError), life.start(), life.stage("evaluate"):
        1 / 0  # noqa: B018
    assert list(life.run.events())[-2] == {
        **list(life.run.events())[-2],
        "stage": "evaluate",
        "error": "ZeroDivisionError: division by zero",
    }
    assert life.ending is not None
    assert (life.ending.kind, life.ending.status, life.ending.exit_code) == ("crash", "failed", EXIT_CRASH)
    assert last_event(life)["error"] == "ZeroDivisionError: division by zero"


@pytest.mark.parametrize("interrupt", [KeyboardInterrupt, StopRequested], ids=["second Ctrl-C", "stop at a safe point"])
def test_an_interrupt_is_recorded_and_exits_130(
    life: RunLifecycle, hooks: HookRecorder, interrupt: type[BaseException]
) -> None:
    with pytest.raises(interrupt), life.start(), life.stage("train"):
        raise interrupt
    assert list(life.run.events())[-2]["error"] == "interrupted"
    assert last_event(life) == {**last_event(life), "status": "interrupted", "error": "stopped by the user"}
    assert life.ending is not None and life.ending.exit_code == EXIT_INTERRUPTED == 130
    assert hooks.calls[-1] == ("run_finished", "interrupted")


def test_a_stage_that_returns_after_a_stop_request_is_not_finished(life: RunLifecycle, hooks: HookRecorder) -> None:
    """A stage that noticed the stop request returns early: its partial work is not "finished"."""
    with pytest.raises(StopRequested), life.start(), life.stage("generate") as stage:
        life.stop()
        stage.summary = {"requests": 3}
    assert types(life)[-2:] == ["stage_failed", "run_finished"]
    assert ("stage_finished", "generate") not in hooks.calls
    assert life.ending is not None and life.ending.status == "interrupted"


def test_off_the_main_rank_nothing_is_recorded_and_no_hook_runs(
    life: RunLifecycle, hooks: HookRecorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RANK", "1")  # read at run time: set after everything was imported
    with life.start(), life.stage("train") as stage:
        stage.summary = {"steps": 1}
    assert hooks.calls == []
    assert not life.run.events_path.exists() or types(life) == []
    assert life.ending is not None and life.ending.status == "completed"  # each rank still knows how it ended


def test_first_signal_asks_to_stop_and_second_interrupts(life: RunLifecycle, capfd: pytest.CaptureFixture[str]) -> None:
    # what was there before comes back: Python's default handler, or SIG_IGN when this process was
    # started in the background by a non-interactive shell (which ignores SIGINT for its children)
    before = signal.getsignal(signal.SIGINT)
    restore = install_sigint(life)
    try:
        os.kill(os.getpid(), signal.SIGTERM)
        assert life.should_stop()
        assert "stopping at the next safe point" in capfd.readouterr().err
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
    finally:
        restore()
    assert signal.getsignal(signal.SIGINT) is before


def test_cli_exits_130_when_the_run_is_interrupted(fake_host, pipeline_config) -> None:
    from stillhouse.kernel.cli import build_cli
    from tests.kernel import fakes

    fakes.MemorisingStudent.stop_after = 1  # the student stops as if Ctrl-C came during training
    result = CliRunner().invoke(build_cli(fake_host), ["run", str(pipeline_config()), "--quiet"])
    assert result.exit_code == EXIT_INTERRUPTED, result.output
