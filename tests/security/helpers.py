"""Run folders for the security tests: fabricated runs whose config `still run --resume` accepts."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

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
