"""Folding events into a run's state, following a growing events.jsonl, and the runs catalog."""

from __future__ import annotations

import json
from pathlib import Path

from stillhouse.kernel.runs import STAGES, append_jsonl
from stillhouse.testing.sample_runs import FakeRun, standard_runs, write_run
from stillhouse.tui.catalog import RunCatalog, RunRow, filter_rows, sort_rows
from stillhouse.tui.state import EventFollower, RunState, load_state


def ev(type_: str, ts: float, **payload: object) -> dict[str, object]:
    return {"ts": ts, "type": type_, "run_id": "r1", **payload}


def test_completed_run_state(stillhouse_home: Path) -> None:
    run_dir = write_run(stillhouse_home, FakeRun("20261120-090000-nli-a001", name="nli", scores={"teacher": 0.9, "baseline": 0.4, "student": 0.72}))
    state = load_state(run_dir)
    assert state.status == "completed"
    assert state.name == "nli" and state.task == "nli" and state.primary_metric == "accuracy"
    assert [s.status for s in state.stages.values()] == ["finished"] * 5
    assert state.progress == 1.0
    assert state.evals["student"]["accuracy"] == 0.72
    assert abs(state.retention - 0.8) < 1e-9
    assert state.teacher_calls == 20 and state.cost_usd > 0
    assert len(state.metrics["train/loss"]) == 20
    assert {a["name"] for a in state.artifacts} == {"student", "report_md"}


def test_running_run_progress_and_eta() -> None:
    state = RunState("r1")
    state.apply(ev("run_started", 100.0, name="x", pid=77, primary_metric="accuracy"))
    for stage in ("generate", "filter"):
        state.apply(ev("stage_started", 101.0, stage=stage))
        state.apply(ev("stage_finished", 110.0, stage=stage, summary={}, seconds=9.0))
    state.apply(ev("stage_started", 120.0, stage="train"))
    state.apply(ev("progress", 130.0, stage="train", done=2, total=10))
    state.apply(ev("progress", 140.0, stage="train", done=4, total=10))
    assert state.status == "running" and state.pid == 77
    assert state.current_stage is not None and state.current_stage.name == "train"
    # 2 steps per 10 s observed; 6 steps left -> 30 s, minus the 5 s since the last event.
    assert state.eta_seconds(now=145.0) == 25.0
    assert state.eta_seconds(now=175.0) is None  # overdue: no honest estimate
    assert state.progress == (2 + 0.4) / 5


def test_resume_restarts_stage_progress_and_keeps_first_start() -> None:
    state = RunState("r1")
    state.apply(ev("run_started", 100.0, pid=1))
    state.apply(ev("stage_started", 101.0, stage="train"))
    state.apply(ev("progress", 110.0, stage="train", done=5, total=10))
    state.apply(ev("stage_failed", 111.0, stage="train", error="interrupted"))
    state.apply(ev("run_finished", 112.0, status="interrupted", error="stopped by the user"))
    assert state.status == "interrupted" and state.stages["train"].status == "interrupted"
    state.apply(ev("run_started", 200.0, pid=2, resumed=True))
    state.apply(ev("stage_started", 201.0, stage="train"))
    train = state.stages["train"]
    assert state.status == "running" and state.pid == 2
    assert train.status == "running" and train.done is None and train.eta_seconds(300.0) is None
    assert state.started == 100.0 and state.last_start == 200.0


def test_follower_reads_only_appended_whole_lines(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    append_jsonl(path, [ev("run_started", 1.0, name="a")])
    follower = EventFollower(tmp_path)
    assert [e["type"] for e in follower.poll()] == ["run_started"]
    assert follower.poll() == []
    # A writer half-way through a line: nothing is read until the line is complete.
    line = json.dumps(ev("stage_started", 2.0, stage="generate"))
    with open(path, "a") as fh:
        fh.write(line[:10])
    assert follower.poll() == []
    with open(path, "a") as fh:
        fh.write(line[10:] + "\n")
    assert [e["type"] for e in follower.poll()] == ["stage_started"]
    assert follower.state.stages["generate"].status == "running"


def test_follower_skips_a_line_torn_by_a_kill(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text('{"ts": 1, "type": "run_started", "run_id": "r"}\n{"ts": 2, "type": "sta\n{"ts": 3, "type": "run_finished", "status": "failed"}\n')
    state = load_state(tmp_path)
    assert state.events_seen == 2 and state.status == "failed"


def rows() -> list[RunRow]:
    return [
        RunRow("a", name="alpha", task="nli", status="completed", started=3.0, retention=0.9),
        RunRow("b", name="beta", task="qa", status="running", started=1.0, retention=None),
        RunRow("c", name="gamma", task="nli", status="failed", started=2.0, retention=0.5, teacher="openai/gpt-4o"),
    ]


def test_filter_words_and_fields() -> None:
    assert [r.run_id for r in filter_rows(rows(), "nli")] == ["a", "c"]
    assert [r.run_id for r in filter_rows(rows(), "status:running")] == ["b"]
    assert [r.run_id for r in filter_rows(rows(), "task:nli gpt-4o")] == ["c"]
    assert filter_rows(rows(), "nothing-matches") == []


def test_sort_keeps_missing_values_last_both_ways() -> None:
    assert [r.run_id for r in sort_rows(rows(), "retention", True)] == ["a", "c", "b"]
    assert [r.run_id for r in sort_rows(rows(), "retention", False)] == ["c", "a", "b"]
    assert [r.run_id for r in sort_rows(rows(), "started", True)] == ["a", "c", "b"]
    assert [r.run_id for r in sort_rows(rows(), "name", False)] == ["a", "b", "c"]


def test_catalog_from_folders_follows_new_and_live_runs(stillhouse_home: Path) -> None:
    specs = standard_runs()
    for spec in specs[:3]:
        write_run(stillhouse_home, spec)
    catalog = RunCatalog(stillhouse_home)
    assert {r.run_id for r in catalog.load()} == {s.run_id for s in specs[:3]}
    assert catalog.refresh() == []
    live = next(s for s in specs if s.status == "running")
    run_dir = write_run(stillhouse_home, live)
    changed = catalog.refresh()
    assert [r.run_id for r in changed] == [live.run_id] and changed[0].status == "running"
    append_jsonl(run_dir / "events.jsonl", [{"ts": 2e9, "type": "run_finished", "run_id": live.run_id, "status": "interrupted"}])
    changed = catalog.refresh()
    assert [(r.run_id, r.status) for r in changed] == [(live.run_id, "interrupted")]


def test_catalog_prefers_registry_rows_and_survives_its_failure(stillhouse_home: Path) -> None:
    spec = standard_runs()[0]
    write_run(stillhouse_home, spec)
    from_registry = RunRow(spec.run_id, name="from-registry", status="completed")

    catalog = RunCatalog(stillhouse_home, registry=lambda home, ingest: [from_registry])
    assert catalog.load() == [from_registry] and catalog.source == "registry"

    def broken(home: Path, ingest: bool) -> list[RunRow]:
        raise RuntimeError("database is on fire")

    catalog = RunCatalog(stillhouse_home, registry=broken)
    assert [r.name for r in catalog.load()] == [spec.name]
    assert catalog.source == "folders" and "on fire" in (catalog.registry_error or "")


def test_catalog_notices_a_resumed_run_within_a_few_refreshes(stillhouse_home: Path) -> None:
    from stillhouse.tui.catalog import TERMINAL_POLL_EVERY

    spec = next(s for s in standard_runs() if s.status == "failed")
    run_dir = write_run(stillhouse_home, spec)
    catalog = RunCatalog(stillhouse_home)
    catalog.load()
    append_jsonl(run_dir / "events.jsonl", [{"ts": 2e9, "type": "run_started", "run_id": spec.run_id, "pid": 1, "resumed": True}])
    changed = []
    for _ in range(TERMINAL_POLL_EVERY):
        changed += catalog.refresh()
    assert [(r.run_id, r.status) for r in changed] == [(spec.run_id, "running")]


def test_long_curves_are_thinned_but_keep_their_ends() -> None:
    from stillhouse.tui.state import MetricPoint
    from stillhouse.tui.widgets.curves import MAX_POINTS, series

    points = [MetricPoint(step, 1.0 / step, 0.0) for step in range(1, 10_001)]
    xs, ys = series(points)
    assert len(xs) <= MAX_POINTS + 1 and xs[0] == 1.0 and xs[-1] == 10_000.0 and ys[-1] == 1e-4
    assert series(points[:10]) == ([float(s) for s in range(1, 11)], [1.0 / s for s in range(1, 11)])


def test_progress_counts_the_stages_the_run_plans() -> None:
    state = RunState("r")
    state.apply({"type": "run_started", "ts": 1.0, "stages": ["generate"]})
    state.apply({"type": "stage_started", "ts": 2.0, "stage": "generate"})
    state.apply({"type": "progress", "ts": 3.0, "stage": "generate", "done": 5, "total": 10})
    assert state.progress == 0.5  # half of the one planned stage, not a tenth of the pipeline
    full = RunState("f")
    full.apply({"type": "run_started", "ts": 1.0, "stages": list(STAGES)})
    full.apply({"type": "stage_started", "ts": 2.0, "stage": "generate"})
    full.apply({"type": "progress", "ts": 3.0, "stage": "generate", "done": 5, "total": 10})
    assert full.progress == 0.1
