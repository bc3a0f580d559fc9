"""The one fold of a run's events: status, stages, timings (kernel.run_state)."""

from __future__ import annotations

from typing import Any

import pytest

from stillhouse.kernel.events import STAGES, Event
from stillhouse.kernel.run_state import fold
from stillhouse.kernel.runs import Run


def ev(ts: float, type_: str, **payload: Any) -> Event:
    return {"ts": ts, "run_id": "r", "type": type_, **payload}  # type: ignore[return-value]


def started(ts: float = 1.0, **payload: Any) -> Event:
    return ev(ts, "run_started", name="demo", task="nli", pid=42, **payload)


def test_no_events_is_created_with_every_stage_pending() -> None:
    state = fold([], "r")
    assert state.status == "created" and state.run_id == "r"
    assert [s.status for s in state.stages.values()] == ["pending"] * len(STAGES)
    assert state.progress is None and state.finished_stages() == {}


def test_a_started_run_is_running_with_its_start_facts() -> None:
    state = fold([started(pid_start=0.5), ev(2, "stage_started", stage="generate")])
    assert state.status == "running" and state.name == "demo" and state.task == "nli"
    assert state.pid == 42 and state.pid_start == 0.5 and state.starts == 1
    assert state.stages["generate"].status == "running" and state.current_stage is state.stages["generate"]


@pytest.mark.parametrize("status", ["completed", "incomplete", "failed", "interrupted"])
def test_run_finished_sets_the_final_status(status: str) -> None:
    state = fold([started(), ev(5, "run_finished", status=status, error=None)])
    assert state.status == status and state.finished == 5


def test_a_finish_without_a_status_means_completed() -> None:
    assert fold([started(), ev(5, "run_finished")]).status == "completed"


def test_stage_timings_and_summary() -> None:
    state = fold(
        [
            started(),
            ev(2, "stage_started", stage="generate"),
            ev(3, "progress", stage="generate", done=5, total=10),
            ev(4, "stage_finished", stage="generate", summary={"requests": 10}, seconds=2.0),
        ]
    )
    generate = state.stages["generate"]
    assert (generate.status, generate.started, generate.finished, generate.seconds) == ("finished", 2, 4, 2.0)
    assert generate.done == generate.total == 10 and generate.attempts == 1
    assert state.summary("generate") == {"requests": 10} and state.summary("train") == {}
    assert state.finished_stages() == {"generate": {"requests": 10}}
    assert state.progress == pytest.approx(1 / len(STAGES))


@pytest.mark.parametrize(("error", "status"), [("boom", "failed"), ("interrupted", "interrupted")])
def test_a_failed_stage(error: str, status: str) -> None:
    state = fold([started(), ev(2, "stage_started", stage="train"), ev(3, "stage_failed", stage="train", error=error)])
    assert state.stages["train"].status == status and state.stages["train"].error == error


@pytest.mark.parametrize(("run_status", "stage_status"), [("failed", "failed"), ("interrupted", "interrupted")])
def test_a_stage_still_running_when_the_run_ends_stopped_with_it(run_status: str, stage_status: str) -> None:
    state = fold([started(), ev(2, "stage_started", stage="train"), ev(3, "run_finished", status=run_status)])
    assert state.stages["train"].status == stage_status


def test_a_stage_started_again_is_unfinished_until_it_finishes_again() -> None:
    first = [
        started(),
        ev(2, "stage_started", stage="filter"),
        ev(3, "stage_finished", stage="filter", summary={"a": 1}, seconds=1),
    ]
    again = [started(10, resumed=True), ev(11, "stage_started", stage="filter")]
    state = fold(first + again)
    assert state.finished_stages() == {} and state.stages["filter"].attempts == 2
    assert state.starts == 2 and state.started == 1 and state.last_start == 10
    state.apply(ev(12, "stage_finished", stage="filter", summary={"a": 2}, seconds=1))
    assert state.finished_stages() == {"filter": {"a": 2}}


def test_a_resume_clears_the_previous_end() -> None:
    state = fold([started(), ev(2, "run_finished", status="failed", error="x"), started(3)])
    assert state.status == "running" and state.error is None and state.finished is None


def test_unknown_event_types_are_counted_and_ignored() -> None:
    state = fold([started(), ev(2, "plugin_made_this", stage="train", status="failed")])
    assert state.events_seen == 2 and state.status == "running"
    assert state.stages["train"].status == "pending" and state.last_ts == 2


def test_retention_is_the_students_share_of_the_teachers_primary_metric() -> None:
    evals = [ev(2, "eval", role=r, metric="accuracy", value=v) for r, v in (("teacher", 0.8), ("student", 0.6))]
    assert fold([started(primary_metric="accuracy"), *evals]).retention == pytest.approx(0.75)
    zero = ev(3, "eval", role="teacher", metric="accuracy", value=0.0)
    assert fold([started(primary_metric="accuracy"), *evals, zero]).retention is None


def test_a_run_answers_status_and_finished_stages_from_the_same_fold(tmp_path: Any) -> None:
    run = Run.create("x", {}, home=tmp_path)
    assert run.status() == "created"
    run.emit("run_started", name="x")
    run.emit("stage_started", stage="generate")
    run.emit("stage_finished", stage="generate", summary={"n": 1}, seconds=0.1)
    run.emit("run_finished", status="incomplete", error=None)
    assert run.status() == "incomplete" and run.finished_stages() == {"generate": {"n": 1}}
    assert run.state().status == run.status()
