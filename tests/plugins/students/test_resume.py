"""Stopping and resuming: a stop request checkpoints and stops; a resumed run continues from the
checkpoint with its optimizer and scheduler state, also after a real ``kill -9``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM

from stillhouse.plugins.losses.divergences import ForwardKL
from stillhouse.plugins.losses.sft import SftLoss
from stillhouse.plugins.students.hf import HfStudentTrainer
from stillhouse.plugins.students.session import complete_checkpoints

from .conftest import JobFactory


class StopAfter:
    """A stop request (as Ctrl-C sets it) that arrives once ``steps`` optimizer steps are done."""

    def __init__(self, steps: int) -> None:
        self.steps = steps
        self.calls = 0

    def __call__(self) -> bool:
        self.calls += 1
        return self.calls >= self.steps


def weights(model_dir: Path) -> dict[str, torch.Tensor]:
    return AutoModelForCausalLM.from_pretrained(model_dir).state_dict()


@pytest.mark.parametrize("stop_at", [2, 3])  # mid-epoch and at an epoch boundary (3 steps per epoch)
def test_stop_then_resume_equals_an_uninterrupted_run(make_job: JobFactory, tmp_path: Path, stop_at: int) -> None:
    options = {"max_steps": 6, "group_by_length": False, "validation": []}
    reference, _ = make_job(SftLoss(), run_dir=tmp_path / "reference", **options)
    HfStudentTrainer(reference.student).train(reference)

    job, _ = make_job(SftLoss(), run_dir=tmp_path / "run", should_stop=StopAfter(stop_at), **options)
    stopped = HfStudentTrainer(job.student).train(job)
    assert stopped.summary["interrupted"] and stopped.steps == stop_at
    assert stopped.model_dir.name == f"checkpoint-{stop_at}"
    assert (stopped.model_dir / "optimizer.pt").exists() and (stopped.model_dir / "scheduler.pt").exists()
    assert not job.output_dir.exists()

    again, events = make_job(SftLoss(), run_dir=tmp_path / "run", resume=True, **options)
    outcome = HfStudentTrainer(again.student).train(again)
    assert outcome.summary["resumed_from"] == f"checkpoint-{stop_at}" and outcome.steps == 6
    assert [e["step"] for e in events.of("metric", "train/loss")] == list(range(stop_at + 1, 7))
    # Same data order, optimizer moments and learning-rate schedule: the same weights at the end.
    for name, tensor in weights(reference.output_dir).items():
        torch.testing.assert_close(weights(outcome.model_dir)[name], tensor, atol=1e-5, rtol=1e-4, msg=name)


@pytest.mark.slow
def test_resume_after_kill_9(
    tmp_path: Path, tiny_model_dir: Path, tiny_teacher_dir: Path, make_job: JobFactory
) -> None:
    run = tmp_path / "run"
    run.mkdir()
    worker = Path(__file__).with_name("kill_worker.py")
    proc = subprocess.Popen([sys.executable, str(worker), str(run), str(tiny_model_dir), str(tiny_teacher_dir)])
    try:
        deadline = time.monotonic() + 240
        while not (run / "hanging").exists():
            assert proc.poll() is None, "the worker exited before it was killed"
            assert time.monotonic() < deadline, "the worker never reached step 3"
            time.sleep(0.2)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    complete, _ = complete_checkpoints(run / "checkpoints")
    assert [p.name for p in complete][-1] == "checkpoint-2"
    store_index = (run / "teacher_topk" / "index.json").stat().st_mtime
    # A checkpoint cut short by the kill (no trainer_state.json) must be ignored and removed.
    partial = run / "checkpoints" / "checkpoint-3"
    partial.mkdir()
    (partial / "model.safetensors").write_bytes(b"torn")

    job, events = make_job(ForwardKL(), run_dir=run, validation=[], resume=True, max_steps=6, save_steps=1, top_k=8)
    outcome = HfStudentTrainer(job.student).train(job)
    assert outcome.summary["resumed_from"] == "checkpoint-2" and outcome.steps == 6
    assert [e["step"] for e in events.of("metric", "train/loss")] == [3, 4, 5, 6]
    assert any("store reused" in e["message"] for e in events.of("log"))
    assert (run / "teacher_topk" / "index.json").stat().st_mtime == store_index
    AutoModelForCausalLM.from_pretrained(outcome.model_dir)
