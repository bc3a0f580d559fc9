"""Optimizer state is kept only while a run can still resume training."""

from __future__ import annotations

from pathlib import Path

from stillhouse.kernel.config import load_config
from stillhouse.kernel.housekeeping import drop_resume_state, human_bytes
from stillhouse.kernel.pipeline import Pipeline
from tests.kernel import fakes


def hf_like_checkpoint(folder: Path) -> Path:
    """The files a Hugging Face Trainer checkpoint holds."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, size in (("model.safetensors", 300), ("optimizer.pt", 600), ("scheduler.pt", 10), ("rng_state.pth", 10), ("trainer_state.json", 5)):
        (folder / name).write_bytes(b"x" * size)
    return folder


def test_drop_resume_state_keeps_weights_and_trainer_state(tmp_path: Path) -> None:
    checkpoint = hf_like_checkpoint(tmp_path / "checkpoints" / "checkpoint-2")
    assert drop_resume_state(tmp_path / "checkpoints") == 620
    assert sorted(p.name for p in checkpoint.iterdir()) == ["model.safetensors", "trainer_state.json"]
    assert drop_resume_state(tmp_path / "nowhere") == 0
    assert human_bytes(773_000_000) == "773.0 MB" and human_bytes(12) == "12 B"


def test_a_finished_train_stage_drops_optimizer_state(fake_host, pipeline_config, monkeypatch) -> None:
    train = fakes.MemorisingStudent.train

    def train_with_checkpoint(self, job):
        hf_like_checkpoint(job.checkpoint_dir / "checkpoint-1")
        return train(self, job)

    monkeypatch.setattr(fakes.MemorisingStudent, "train", train_with_checkpoint)
    pipeline = Pipeline.create(load_config(pipeline_config(), fake_host), fake_host)
    assert pipeline.execute() == "completed"
    checkpoint = pipeline.run.path("checkpoints", "checkpoint-1")
    assert not (checkpoint / "optimizer.pt").exists() and (checkpoint / "model.safetensors").exists()
    logs = [e["message"] for e in pipeline.run.events() if e["type"] == "log"]
    assert any("of optimizer state" in m for m in logs)
