"""The same training under torchrun with 2 CPU processes (DDP over gloo), via scripts/train_ddp.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from transformers import AutoModelForCausalLM

SCRIPT = Path(__file__).parents[3] / "scripts" / "train_ddp.py"


@pytest.mark.slow
def test_two_process_ddp_training(tmp_path: Path, tiny_model_dir: Path, tiny_teacher_dir: Path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(SCRIPT),
        "--out", str(tmp_path), "--student", str(tiny_model_dir), "--teacher", str(tiny_teacher_dir),
    ]  # fmt: skip
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["world_size"] == 2
    # 12 pairs, 2 per process per step, 2 processes: 3 steps an epoch, 2 epochs.
    assert summary["steps"] == 6 and summary["teacher_topk"]["coverage"] == 1.0
    events = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    steps = [e["step"] for e in events if e["type"] == "metric" and e["key"] == "train/loss"]
    assert steps == [1, 2, 3, 4, 5, 6]  # reported once, by rank 0
    AutoModelForCausalLM.from_pretrained(summary["model_dir"])
