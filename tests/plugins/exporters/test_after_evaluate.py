"""`evaluate.export = ["gguf:q8_0"]`: after the evaluate stage the student is exported and each
export's size becomes a student measurement in eval/results.json (so the report shows it)."""

from __future__ import annotations

import json

import stillhouse.plugins.exporters as exporters_plugin
from stillhouse.kernel.runs import Run
from tests.plugins.reports.conftest import CONFIG, RUN_ID, write_run


def student_metrics(run_dir):
    results = json.loads((run_dir / "eval" / "results.json").read_text())
    return {m["name"]: m for m in results["student"]["metrics"]}


def test_the_evaluate_stage_hook_exports_and_records_sizes(make_host, stillhouse_home, tiny_model_dir):
    make_host(exporters_plugin, entry_points=False)
    config = {**CONFIG, "student": {"model": str(tiny_model_dir)}, "evaluate": {"export": ["gguf:q8_0", "gguf:q5_k"]}}
    run_dir = write_run(stillhouse_home / "runs" / RUN_ID, tiny_model_dir, config)
    run = Run(RUN_ID, run_dir, config)

    exporters_plugin.stage_finished(run=run, stage="train", summary={})
    assert "bytes_on_disk_gguf_q8_0" not in student_metrics(run_dir)  # only after evaluate
    exporters_plugin.stage_finished(run=run, stage="evaluate", summary={})

    metrics = student_metrics(run_dir)
    [gguf] = (run_dir / "exports" / "gguf-q8_0").glob("*.gguf")
    assert metrics["bytes_on_disk_gguf_q8_0"]["value"] == gguf.stat().st_size
    assert metrics["bytes_on_disk_gguf_q8_0"]["unit"] == "bytes (gguf:q8_0 export)"
    failed = metrics["bytes_on_disk_gguf_q5_k"]
    assert failed["value"] is None and "export failed" in failed["reason"] and "q8_0" in failed["reason"]
    assert "accuracy" in metrics  # the student's other measurements are kept
    assert not (run_dir / "exports" / "gguf-q5_k").exists()


def test_no_export_configured_leaves_the_results_alone(make_host, stillhouse_home, tiny_model_dir):
    make_host(exporters_plugin, entry_points=False)
    config = {**CONFIG, "student": {"model": str(tiny_model_dir)}}
    run_dir = write_run(stillhouse_home / "runs" / RUN_ID, tiny_model_dir, config)
    before = (run_dir / "eval" / "results.json").read_text()
    exporters_plugin.stage_finished(run=Run(RUN_ID, run_dir, config), stage="evaluate", summary={})
    assert (run_dir / "eval" / "results.json").read_text() == before and not (run_dir / "exports").exists()
