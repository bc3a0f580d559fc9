"""The lead's real pipeline (with the kernel's test plugins) feeding the registry through its hooks:
after two runs, run_summary agrees with what their folders say. Kept independent of the fakes'
exact numbers: expectations are read back from the run folders."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stillhouse.kernel.config import load_config
from stillhouse.kernel.pipeline import Pipeline
from stillhouse.kernel.runs import read_jsonl
from stillhouse.registry import plugin as registry_plugin
from tests.kernel import fakes
from tests.kernel.conftest import write_fake_pipeline
from tests.registry.conftest import table


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return write_fake_pipeline(tmp_path)


def test_pipeline_runs_are_in_run_summary_without_a_query_time_ingest(
    home: Path, make_host, config: Path, monkeypatch
) -> None:
    fakes.reset()
    host = make_host(fakes, registry_plugin, entry_points=False)
    loaded = load_config(config, host)
    done = Pipeline.create(loaded, host)
    assert done.execute() == "completed"
    monkeypatch.setattr(fakes.MemorisingStudent, "stop_after", 2)  # Ctrl-C inside training
    stopped = Pipeline.create(loaded, host)
    assert stopped.execute() == "interrupted"

    # the hooks alone (no ingest before this read) brought both runs in
    rows = {
        r[0]: r[1:]
        for r in table(
            home,
            "SELECT run_id, status, samples_accepted, samples_rejected, teacher_calls, "
            "teacher_score, student_score, retention_pct, final_train_loss FROM run_summary",
        )
    }
    for pipeline, status in ((done, "completed"), (stopped, "interrupted")):
        run = pipeline.run
        samples = list(read_jsonl(run.path("samples.jsonl")))
        events = list(run.events())
        losses = [e["value"] for e in events if e["type"] == "metric" and e["key"] == "train/loss"]
        got = rows[run.id]
        assert got[:4] == (
            status,
            sum(s["accepted"] for s in samples),
            sum(not s["accepted"] for s in samples),
            sum(e["type"] == "teacher_call" for e in events),
        )
        assert got[7] == losses[-1]
        if status == "completed":
            results = json.loads(run.path("eval", "results.json").read_text())
            primary = {r: next(m["value"] for m in v["metrics"] if m["name"] == "accuracy") for r, v in results.items()}
            assert got[4:7] == (primary["teacher"], primary["student"], 100.0 * primary["student"] / primary["teacher"])
        else:
            assert got[4:7] == (None, None, None)
