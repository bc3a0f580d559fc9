"""A run's evaluation results with hand-computed ratios, and a fabricated run folder holding a real
tiny student, for the reporter and export tests."""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict
from pathlib import Path

import pytest

from stillhouse.kernel.interfaces import Metric, ReportInput

RUN_ID = "20261130-010203-nli-demo-ab12"
CURVE = [(5, 2.5), (10, 1.75), (15, 1.25), (20, 1.0)]


def role_metrics(params, memory, p50, tps, acc, cost, *, cost_reason=None):
    return [
        Metric("accuracy", acc, n=50),
        Metric("macro_f1", acc - 0.1, n=50),
        Metric("parameters", params, n=1, higher_is_better=None, unit="params"),
        Metric("peak_memory_bytes", memory, n=1, higher_is_better=False, unit="bytes (RSS)"),
        Metric("latency_p50_ms", p50, n=8, higher_is_better=False, unit="ms (batch size 1)"),
        Metric("latency_p95_ms", p50 * 2, n=8, higher_is_better=False, unit="ms (batch size 1)"),
        Metric("throughput_tokens_per_s", tps, n=50, unit="tok/s at batch size 8"),
        Metric("cost_per_1k_requests_usd", cost, n=50, reason=cost_reason, higher_is_better=False, unit="USD"),
    ]


RESULTS = {
    # teacher 1.0B params, 4 GiB; distilled 100M, 0.5 GiB: 10× smaller, 87.5% less memory,
    # latency 200 -> 50 ms (75%), 40 -> 160 tok/s (4×), accuracy 0.80 -> 0.72 (90.0%), $2 -> $0.5 (75%).
    "teacher": role_metrics(1e9, 4 * 2**30, 200.0, 40.0, 0.80, 2.0),
    "baseline": role_metrics(1e8, 2**29, 50.0, 160.0, 0.40, None, cost_reason="local model: compute not priced"),
    "student": role_metrics(1e8, 2**29, 50.0, 160.0, 0.72, 0.5),
}

CONFIG = {
    "name": "nli-demo",
    "task": "nli",
    "teacher": {"model": "openai/gpt-4o", "api_key_env": "OPENAI_API_KEY"},
    "student": {"model": "HuggingFaceTB/SmolLM2-135M-Instruct", "lora": None},
    "train": {"learning_rate": 0.0002, "num_epochs": 3, "loss": "sft"},
    "data": {"train": "train.jsonl", "test": "test.jsonl"},
    "evaluate": {"split": "test"},
}


@pytest.fixture
def report_input(tmp_path: Path) -> ReportInput:
    run_dir = tmp_path / RUN_ID
    run_dir.mkdir()
    return ReportInput(
        run_id=RUN_ID,
        run_dir=run_dir,
        config=CONFIG,
        results=RESULTS,
        primary_metric="accuracy",
        training_curve=CURVE,
        filter_summary={"accepted": 40, "rejected": 10, "reasons": {"label_mismatch": 7, "unparsed": 3}},
        teacher_summary={"calls": 50, "cost_usd": 0.1234, "cache_hits": 0},
    )


def write_run(run_dir: Path, student_source: Path | None, config: dict) -> Path:
    """A run folder as the pipeline leaves it: config, events, eval results and the student."""
    run_dir.mkdir(parents=True)
    (run_dir / "config.json").write_text(json.dumps(config))
    events = [
        {"type": "run_started", "run_id": run_dir.name, "task": "nli", "primary_metric": "accuracy", "config": config}
    ]
    events += [{"type": "metric", "key": "train/loss", "value": v, "step": s, "context": "train"} for s, v in CURVE]
    events += [{"type": "stage_finished", "stage": "evaluate", "summary": {"split": "test", "n": 50}}]
    events += [{"type": "run_finished", "status": "completed"}]
    (run_dir / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    (run_dir / "eval").mkdir()
    results = {
        role: {
            "model": CONFIG["teacher"]["model"] if role == "teacher" else str(student_source),
            "metrics": [asdict(m) for m in ms],
        }
        for role, ms in RESULTS.items()
    }
    (run_dir / "eval" / "results.json").write_text(json.dumps(results))
    if student_source is not None:
        shutil.copytree(student_source, run_dir / "student")
    return run_dir
