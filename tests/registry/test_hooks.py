"""The registry follows runs through the kernel's lifecycle hooks (found via the entry point)."""

from __future__ import annotations

from pathlib import Path

from stillhouse.kernel.runs import Run, read_jsonl
from stillhouse.registry.db import db_path
from tests.registry.conftest import table


def _emit_stage(run: Run, stage: str, steps: int) -> None:
    run.emit("stage_started", stage=stage)
    for step in range(1, steps + 1):
        run.emit("metric", key="train/loss", value=1.0 / step, step=step, context="train")
        run.emit("progress", stage=stage, done=step, total=steps)
    run.emit("stage_finished", stage=stage, summary={"steps": steps}, seconds=0.1)


def test_hooks_ingest_at_start_stage_ends_and_finish(home: Path, make_host) -> None:
    host = make_host()
    assert "registry" in host.sources and "stage_finished" in host.sources["registry"].hooks
    run = Run.create("hooked", {"task": "nli"}, home)
    run.emit("run_started", task="nli", config={"task": "nli"}, primary_metric="accuracy", pid=1)
    host.hook.run_started(run=run)
    assert table(home, "SELECT run_id, status FROM runs") == [(run.id, "running")]

    _emit_stage(run, "train", 4)
    assert table(home, "SELECT count(*) FROM metrics") == [(0,)]  # before the hook: not ingested yet
    host.hook.stage_finished(run=run, stage="train", summary={"steps": 4})
    assert table(home, "SELECT count(*) FROM metrics") == [(8,)]  # 4 metric + 4 progress rows
    assert table(home, "SELECT stage, status FROM stages") == [("train", "finished")]

    run.emit("run_finished", status="completed", error=None)
    host.hook.run_finished(run=run, status="completed")
    assert table(home, "SELECT status, final_train_loss FROM run_summary") == [("completed", 0.25)]


def test_a_registry_failure_never_fails_the_run(home: Path, make_host) -> None:
    host = make_host()
    db_path(home).mkdir()  # a folder where the database file should be: DuckDB cannot open it
    run = Run.create("unlucky", {"task": "nli"}, home)
    run.emit("run_started", task="nli", config={})
    host.hook.run_started(run=run)
    host.hook.stage_finished(run=run, stage="generate", summary={})
    warnings = [e for e in read_jsonl(run.events_path) if e["type"] == "log" and e["level"] == "warning"]
    assert len(warnings) == 2 and "registry ingest after run start failed" in warnings[0]["message"]
