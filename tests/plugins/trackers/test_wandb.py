"""The wandb tracker in offline mode, read back from the run's ``.wandb`` file: the transaction
log that ``wandb sync`` uploads (wandb 0.19+ writes no wandb-summary.json or history file offline
and ships no Python reader, so the test reads the log's records itself)."""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest

from stillhouse.kernel.config import load_config
from stillhouse.kernel.pipeline import Pipeline
from stillhouse.kernel.runs import Run

BLOCK = 32768  # the leveldb log format wandb's transaction log uses: 32 KiB blocks of framed records
HEADER = 7  # ":W&B", 0xBEE1 magic, version byte; every record: crc32 (4), length (2), type (1)
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def wandb_records(path: Path) -> Iterator[object]:
    """Every protobuf Record of a ``run-<id>.wandb`` file."""
    from wandb.proto import wandb_internal_pb2

    data = path.read_bytes()
    assert data[:4] == b":W&B", "a wandb transaction log"
    offset, pending = HEADER, b""
    while offset + HEADER <= len(data):
        left_in_block = BLOCK - offset % BLOCK
        if left_in_block < HEADER:  # the block's tail is padding
            offset += left_in_block
            continue
        _crc, length, kind = struct.unpack("<IHB", data[offset : offset + HEADER])
        chunk = data[offset + HEADER : offset + HEADER + length]
        offset += HEADER + length
        if kind in (FULL, FIRST):
            pending = chunk
        elif kind in (MIDDLE, LAST):
            pending += chunk
        else:
            break  # zero fill at the end
        if kind in (FULL, LAST):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            yield record


def key_of(item: object) -> str:
    """A history or summary item's key: ``key``, or ``nested_key`` (a path) when wandb-core set that."""
    return item.key or ".".join(item.nested_key)  # type: ignore[attr-defined]


def read_offline_run(run: Run) -> dict:
    """The config, history rows and summary the tracker logged, as wandb sync would upload them."""
    [log] = list(run.path("wandb").glob("offline-run-*/run-*.wandb"))
    config: dict = {}
    history: list[dict] = []
    summary: dict = {}
    for record in wandb_records(log):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            config |= {item.key: json.loads(item.value_json) for item in record.run.config.update}
            run_id = record.run.run_id
        elif kind == "config":
            config |= {item.key: json.loads(item.value_json) for item in record.config.update}
        elif kind == "history":
            history.append({key_of(item): json.loads(item.value_json) for item in record.history.item})
        elif kind == "summary":
            summary |= {key_of(item): json.loads(item.value_json) for item in record.summary.update}
        elif kind == "files":
            summary.setdefault("_files", []).extend(f.path for f in record.files.files)
    return {"id": run_id, "config": config, "history": history, "summary": summary, "log": log}


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path):
    """No login, no network: wandb's own files stay in the test's folder."""
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    for var in ("WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR"):
        monkeypatch.setenv(var, str(tmp_path / "wandb-home" / var.lower()))


def test_wandb_offline_run_holds_config_curves_evaluation_retention_and_report(tracker_host, tracked_config):
    config = tracked_config('trackers = ["wandb"]\n[report.options.wandb]\nproject = "nli"\nmode = "offline"\ntags = ["smoke"]\n')
    pipeline = Pipeline.create(load_config(config, tracker_host), tracker_host)
    assert pipeline.execute() == "completed"
    run = pipeline.run
    logged = read_offline_run(run)
    assert logged["id"] == run.id
    assert logged["config"]["task"] == "echo" and logged["config"]["train.loss"] == "sft"
    curve = [(row["_step"], row["train/loss"]) for row in logged["history"] if "train/loss" in row]
    assert curve == sorted(curve) and len(curve) >= 2 and curve[0] == (1, 1.0)
    summary = logged["summary"]
    assert summary["eval/student/accuracy"] == 1.0 and summary["eval/baseline/accuracy"] == 0.0
    assert summary["teacher/calls"] == 7 and summary["filter/accepted"] == 5
    assert summary["filter/acceptance_rate"] == pytest.approx(5 / 7)
    assert summary["stillhouse/artifacts"] == ["report.md"]
    assert "report.md" in summary["_files"]
    assert (logged["log"].parent / "files" / "report.md").is_file(), "the report is kept for wandb sync"
    report_files = run.finished_stages()["report"]["files"]
    assert any(f.endswith(".wandb") for f in report_files), "the report stage lists the wandb log"

    # a resumed report stage replaces the offline copy instead of leaving a second run to sync
    Pipeline(load_config(config, tracker_host), tracker_host, Run.open(run.id)).execute(["report"])
    assert read_offline_run(run)["summary"]["eval/student/accuracy"] == 1.0


def test_retention_is_the_students_primary_metric_over_the_teachers(tracker_host, tracked_config):
    from stillhouse.kernel.interfaces import Metric, ReportInput
    from stillhouse.kernel.tracking import TrackedRun

    run = Pipeline.create(load_config(tracked_config(""), tracker_host), tracker_host).run
    report = ReportInput(
        run_id=run.id,
        run_dir=run.path(),
        config={"name": "x"},
        results={"teacher": [Metric("accuracy", 0.8)], "student": [Metric("accuracy", 0.6), Metric("f1", 0.1)]},
        primary_metric="accuracy",
    )
    assert TrackedRun.from_report(report).retention == pytest.approx(0.75)
    report.results["teacher"] = [Metric("accuracy", None, reason="not measured")]
    assert TrackedRun.from_report(report).retention is None


def test_online_wandb_without_a_login_warns_once_and_the_run_goes_on(tracker_host, tracked_config, monkeypatch, tmp_path):
    monkeypatch.delenv("WANDB_MODE")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "no-login"))  # no ~/.netrc with a key
    monkeypatch.setenv("WANDB_BASE_URL", "http://127.0.0.1:9")  # and nothing to reach if one were found
    config = tracked_config('trackers = ["wandb", "tensorboard"]\n[report.options.wandb]\nmode = "online"\n')
    pipeline = Pipeline.create(load_config(config, tracker_host), tracker_host)
    assert pipeline.execute() == "completed"
    warnings = [e["message"] for e in pipeline.run.events() if e["type"] == "log" and e.get("level") == "warning"]
    assert len(warnings) == 1 and warnings[0].startswith("tracker wandb failed, the run goes on")
    assert "wandb login" in warnings[0] or "API key" in warnings[0]
    assert list(pipeline.run.path("tensorboard").glob("events.out.tfevents.*")), "the other tracker still ran"
