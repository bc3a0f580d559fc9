"""`still eval --model EXPORT_DIR`: the exported GGUF artifact is evaluated itself, with its own
size on disk, not the float folder it came from."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from stillhouse.kernel.runs import list_runs
from stillhouse.plugins.exporters.artifacts import resolve_exported
from tests.plugins.reports.conftest import RUN_ID

FIXTURE = Path(__file__).parents[2] / "fixtures" / "data" / "nli.jsonl"


def test_an_export_folder_stands_for_its_gguf_file(tmp_path):
    (tmp_path / "model-q8_0.gguf").write_bytes(b"GGUF")
    (tmp_path / "README.md").write_text("card")
    assert resolve_exported(str(tmp_path)) == str(tmp_path / "model-q8_0.gguf")
    assert resolve_exported(f"hf/{tmp_path}") == f"hf/{tmp_path / 'model-q8_0.gguf'}"
    (tmp_path / "config.json").write_text("{}")  # a transformers folder stays a folder
    assert resolve_exported(str(tmp_path)) == str(tmp_path)
    assert resolve_exported("openai/gpt-4o") == "openai/gpt-4o"


@pytest.mark.slow
def test_eval_measures_the_exported_gguf(still, student_run, exports, make_host, stillhouse_home):
    from stillhouse.kernel.cli import build_cli

    dest = exports / "q8"
    result = still("export", RUN_ID, str(dest), "--format", "gguf", "--quantize", "q8_0")
    assert result.exit_code == 0, result.output
    group = build_cli(make_host())  # every installed plugin: tasks, students, evaluators
    args = ["eval", "--model", str(dest), "--task", "nli", "--data", str(FIXTURE), "--limit", "2"]
    args += ["--max-new-tokens", "4", "--name", "q8"]
    result = CliRunner().invoke(group, args)
    assert result.exit_code == 0, result.output
    run = next(r for r in list_runs(stillhouse_home) if r.config.get("kind") == "eval")
    evals = {e["metric"]: e for e in run.events() if e["type"] == "eval"}
    assert evals["accuracy"]["n"] == 2
    assert evals["bytes_on_disk"]["value"] == (dest / "model-q8_0.gguf").stat().st_size
    info = json.loads(run.path("eval", "results.json").read_text())["model"]["info"]
    assert info["runtime"].startswith("transformers")
