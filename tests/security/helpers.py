"""Shared by the security tests: fabricated run folders whose config `still run --resume` accepts; a
pipeline over the NLI fixture against a real local server; `still` run as a real subprocess (its own
signals, exit code, stdout and stderr)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from stillhouse.testing.sample_runs import standard_runs, write_run

NLI_ROW = {"premise": "a dog runs", "hypothesis": "an animal moves", "label": "entailment"}


def resumable_run(home: Path, index: int = 0) -> Path:
    """A fabricated run folder with the data files its config names, so its config validates."""
    run_dir = write_run(home, standard_runs()[index])
    config = json.loads((run_dir / "config.json").read_text())
    for split in ("train", "validation", "test"):
        rel = config["data"].get(split)
        if rel:
            path = run_dir / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(NLI_ROW) + "\n")
    return run_dir


def still_exe() -> str:
    return str(Path(sys.executable).with_name("still"))


def env_for(home: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, "STILLHOUSE_HOME": str(home), "COLUMNS": "200", **extra}

FIXTURE = Path(__file__).parents[1] / "fixtures" / "data" / "nli.jsonl"


def nli_rows(limit: int | None = None, *, mark: dict[int, str] | None = None) -> list[dict[str, Any]]:
    """The NLI fixture rows; ``mark`` appends a fake-server marker to the hypothesis of row i."""
    rows = [json.loads(line) for line in FIXTURE.read_text().splitlines() if line.strip()][:limit]
    for i, marker in (mark or {}).items():
        rows[i]["hypothesis"] += f" {marker}"
    return rows


def write_config(folder: Path, api_base: str, rows: list[dict[str, Any]], *, teacher: str = "", extra: str = "") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    path = folder / "pipeline.toml"
    path.write_text(
        f'''task = "nli"
{extra}
[data]
train = "train.jsonl"
[teacher]
model = "openai/fake-teacher"
api_base = "{api_base}"
api_key_env = "SEC_TEACHER_CRED"
concurrency = 2
max_retries = 1
retry_base_delay = 0.01
retry_max_delay = 0.05
{teacher}
[student]
model = "unused-until-the-train-stage"
'''
    )
    return path


def still(*args: str) -> list[str]:
    return [sys.executable, "-c", "from stillhouse.kernel.cli import main; main()", *args]


def run_still(args: list[str], env: dict[str, str], timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run(still(*args), env={**os.environ, **env}, capture_output=True, text=True, timeout=timeout)


def only_run(home: Path) -> Path:
    runs = [p for p in (home / "runs").iterdir() if p.is_dir()]
    assert len(runs) == 1, runs
    return runs[0]
