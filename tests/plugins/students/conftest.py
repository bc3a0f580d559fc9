"""The ``make_job`` fixture: TrainJobs on the tiny real models from ``stillhouse.testing``, built the
way the pipeline builds them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from stillhouse.kernel.interfaces import Loss, TeacherConfig, TrainJob, TrainPair
from stillhouse.plugins.losses.sft import SftLoss
from stillhouse.plugins.students.config import HfStudentConfig, HfTrainConfig

from .helpers import Events, nli_pairs

JobFactory = Callable[..., tuple[TrainJob, Events]]


@pytest.fixture
def make_job(tmp_path: Path, tiny_model_dir: Path, tiny_teacher_dir: Path) -> JobFactory:
    def factory(
        loss: Loss | None = None,
        *,
        run_dir: Path | None = None,
        train: list[TrainPair] | None = None,
        validation: list[TrainPair] | None = None,
        student: dict[str, Any] | None = None,
        teacher: str | None = None,
        resume: bool = False,
        should_stop: Callable[[], bool] = lambda: False,
        **train_options: Any,
    ) -> tuple[TrainJob, Events]:
        run = run_dir or tmp_path / "run"
        loss = loss or SftLoss()
        options = {"learning_rate": 3e-3, "batch_size": 4, "num_epochs": 1, "logging_steps": 1, **train_options}
        events = Events()
        job = TrainJob(
            run_dir=run,
            output_dir=run / "student",
            checkpoint_dir=run / "checkpoints",
            train=nli_pairs(12) if train is None else train,
            validation=nli_pairs(4, start=12) if validation is None else validation,
            student=HfStudentConfig.model_validate(
                {"model": str(tiny_model_dir), "max_length": 256, **(student or {})}
            ),
            train_config=HfTrainConfig(loss=loss.name, **options),
            loss=loss,
            teacher=TeacherConfig(model=teacher or f"hf/{tiny_teacher_dir}"),
            emit=events.append,
            resume=resume,
            should_stop=should_stop,
        )
        return job, events

    return factory
