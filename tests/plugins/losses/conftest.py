"""``make_loss_job``: a TrainJob for the hf trainer on the tiny real models, any loss and teacher folder."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from stillhouse.kernel.interfaces import Loss, TeacherConfig, TrainJob
from stillhouse.plugins.students.config import HfStudentConfig, HfTrainConfig
from tests.plugins.students.helpers import Events, nli_pairs

LossJob = Callable[..., tuple[TrainJob, Events]]


@pytest.fixture
def make_loss_job(tmp_path: Path, tiny_model_dir: Path) -> LossJob:
    def factory(
        loss: Loss[Any], teacher: Path, *, name: str = "run", student: dict[str, Any] | None = None, **options: Any
    ) -> tuple[TrainJob, Events]:
        run = tmp_path / name
        events = Events()
        settings = {"learning_rate": 1e-2, "batch_size": 4, "num_epochs": 1, "logging_steps": 1, **options}
        job = TrainJob(
            run_dir=run,
            output_dir=run / "student",
            checkpoint_dir=run / "checkpoints",
            train=nli_pairs(12),
            validation=[],
            student=HfStudentConfig.model_validate({"model": str(tiny_model_dir), "max_length": 256, **(student or {})}),
            train_config=HfTrainConfig(loss=loss.name, **settings),
            loss=loss,
            teacher=TeacherConfig(model=f"hf/{teacher}"),
            emit=events.append,
        )
        return job, events

    return factory
