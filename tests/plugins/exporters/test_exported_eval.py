"""`evaluate.export = ["gguf:q8_0"]` evaluates the exported student on the run's own evaluation rows
and the reports show it as its own row, compared with the distilled student it came from."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

import stillhouse.plugins.exporters as exporters_plugin
from stillhouse.kernel.runs import Run
from stillhouse.plugins.reports.content import build_view, load_report_input
from stillhouse.plugins.reports.html import HtmlReporter
from stillhouse.plugins.reports.markdown import MarkdownReporter
from tests.plugins.reports.conftest import CONFIG, RUN_ID, write_run

NLI = Path(__file__).parents[2] / "fixtures" / "data" / "nli.jsonl"
LIMIT = 3


def exported_run(stillhouse_home, tiny_model_dir, export):
    config = {
        **CONFIG,
        "teacher": {"model": "openai/gpt-4o-mini"},
        "student": {"model": str(tiny_model_dir)},
        "data": {"train": str(NLI), "test": str(NLI)},
        "evaluate": {"limit": LIMIT, "max_new_tokens": 4, "batch_size": 2, "export": export},
    }
    run_dir = write_run(stillhouse_home / "runs" / RUN_ID, tiny_model_dir, config)
    # the student's size on disk, as the footprint evaluator measures it (float32 safetensors)
    results = json.loads((run_dir / "eval" / "results.json").read_text())
    disk = sum(p.stat().st_size for p in (run_dir / "student").iterdir())
    results["student"]["metrics"].append({"name": "bytes_on_disk", "value": disk, "n": 1, "unit": "bytes"})
    (run_dir / "eval" / "results.json").write_text(json.dumps(results))
    return Run(RUN_ID, run_dir, config)


def test_the_q8_0_export_is_evaluated_and_reported_as_its_own_row(make_host, stillhouse_home, tiny_model_dir):
    make_host()  # the installed plugins: the nli task, the hf student, the evaluators, the exporters
    run = exported_run(stillhouse_home, tiny_model_dir, ["gguf:q8_0", "gguf:q5_k"])

    exporters_plugin.stage_finished(run=run, stage="evaluate", summary={})

    results = json.loads((run.dir / "eval" / "results.json").read_text())
    q8 = {m["name"]: m for m in results["student-gguf-q8_0"]["metrics"]}
    [gguf] = (run.dir / "exports" / "gguf-q8_0").glob("*.gguf")
    assert q8["accuracy"]["n"] == LIMIT and q8["accuracy"]["value"] is not None  # the same rows as the student
    assert q8["bytes_on_disk"]["value"] == gguf.stat().st_size  # the file's size, not the float32 weights'
    assert results["student-gguf-q8_0"]["info"]["runtime"].startswith("transformers (GGUF")
    assert len((run.dir / "eval" / "student-gguf-q8_0.jsonl").read_text().splitlines()) == LIMIT
    # not timed here (dequantised to float32, it would show the float32 speed): empty cells that say why
    assert q8["request_latency_ms"]["value"] is None and "bench/export.py" in q8["request_latency_ms"]["reason"]
    assert q8["throughput_tokens_per_s"]["value"] is None and "float32" in q8["throughput_tokens_per_s"]["reason"]
    # q5_k is no type the gguf exporter writes: a missing row with the reason, and no crash
    q5 = {m["name"]: m for m in results["student-gguf-q5_k"]["metrics"]}
    assert q5["accuracy"]["value"] is None and "export failed" in q5["accuracy"]["reason"]

    view = build_view(load_report_input(run.dir))
    assert view.roles[-2:] == ["student-gguf-q8_0", "student-gguf-q5_k"]
    ratio = view.comparison.row("student-gguf-q8_0_vs_student")
    assert ratio.label == "q8_0 GGUF vs distilled"
    student_accuracy = view.values["student"]["accuracy"]
    assert ratio.cells["task"].value == q8["accuracy"]["value"] - student_accuracy
    assert ratio.cells["task"].text.endswith("pts") and ratio.cells["task"].n == LIMIT
    assert [c.key for c in view.comparison.columns][:2] == ["parameters", "disk"]
    assert ratio.cells["disk"].text.endswith("× smaller")  # q8_0: about a quarter of float32
    assert ratio.cells["disk"].value > 2

    [markdown] = [p for p in MarkdownReporter().write(load_report_input(run.dir)) if p.suffix == ".md"]
    text = markdown.read_text()
    assert "| distilled, q8_0 GGUF |" in text and "| **q8_0 GGUF vs distilled** |" in text
    assert "size on disk" in text and "export failed" in text and "not timed in the pipeline" in text
    [html] = HtmlReporter().write(load_report_input(run.dir))
    assert "distilled, q8_0 GGUF" in html.read_text() and "q8_0 GGUF vs distilled" in html.read_text()

    # `still runs show`: the registry lists the export's metrics beside the student's, with the change
    from stillhouse.kernel.cli import build_cli

    shown = CliRunner().invoke(build_cli(make_host()), ["runs", "show", RUN_ID, "--format", "json"])
    assert shown.exit_code == 0, shown.output
    rows = {(r["export"], r["metric"]): r for r in json.loads(shown.output)["exports"]}
    accuracy = rows[("student-gguf-q8_0", "accuracy")]
    assert accuracy["n"] == LIMIT and accuracy["change"] == pytest.approx(accuracy["value"] - student_accuracy)
    assert rows[("student-gguf-q5_k", "accuracy")]["value"] is None


def test_an_export_whose_config_no_longer_loads_is_a_missing_row_not_a_crash(make_host, stillhouse_home, tiny_model_dir):
    make_host()
    run = exported_run(stillhouse_home, tiny_model_dir, ["gguf:q8_0"])
    run.config["data"] = {"train": str(NLI)}  # no evaluation split any more

    exporters_plugin.stage_finished(run=run, stage="evaluate", summary={})

    results = json.loads((run.dir / "eval" / "results.json").read_text())
    accuracy = {m["name"]: m for m in results["student-gguf-q8_0"]["metrics"]}["accuracy"]
    assert accuracy["value"] is None and "no evaluation split" in accuracy["reason"]
