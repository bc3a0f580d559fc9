"""The shipped example configs run as the README shows (with the real SmolLM2 teacher)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
STILL = [sys.executable, "-c", "from stillhouse.kernel.cli import main; main()"]


def run_still(*args: str, home: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "STILLHOUSE_HOME": str(home)}
    return subprocess.run([*STILL, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)


def only_run(home: Path) -> Path:
    (run_dir,) = list((home / "runs").iterdir())
    return run_dir


@pytest.mark.slow
def test_nli_example_generate_stage(tmp_path: Path) -> None:
    done = run_still("run", "examples/nli.toml", "--stage", "generate", "--set", "data.limit=8", home=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    outputs = (only_run(tmp_path) / "teacher" / "outputs.jsonl").read_text().splitlines()
    assert len(outputs) == 8 and all(json.loads(line)["error"] is None for line in outputs)


@pytest.mark.slow
def test_example_runs_end_to_end(tmp_path: Path) -> None:
    """All five stages of a README example, a little smaller so CI stays within its time."""
    done = run_still(
        "run", "examples/nli.toml", "--set", "train.num_epochs=1", "--set", "data.limit=20", "--set", "evaluate.limit=6",
        home=tmp_path,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    run_dir = only_run(tmp_path)
    results = json.loads((run_dir / "eval" / "results.json").read_text())
    assert set(results) == {"teacher", "baseline", "student"}
    assert all(any(m["name"] == "accuracy" and m["n"] == 6 for m in r["metrics"]) for r in results.values())
    assert (run_dir / "report.md").exists() and (run_dir / "report.html").exists()
    assert "distilled vs teacher" in done.stdout


@pytest.mark.slow
def test_summarization_example_runs_end_to_end(tmp_path: Path) -> None:
    """The README's first example, exactly as written."""
    done = run_still("run", "examples/summarization.toml", home=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    results = json.loads((only_run(tmp_path) / "eval" / "results.json").read_text())
    assert all(any(m["name"] == "rouge_l" and m["n"] == 20 for m in r["metrics"]) for r in results.values())
