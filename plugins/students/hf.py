"""The ``hf`` student trainer: any transformers causal LM, fine-tuned with transformers' Trainer.

Full fine-tuning or LoRA (peft), packing without cross-sample attention, validation loss and early
stopping with best-checkpoint selection, resumable checkpoints, run events, and every loss plugin
(sequence-level ``sft`` or logit-level on the teacher's stored top-k). Because it is the Trainer,
``accelerate launch`` / ``torchrun`` (DDP, FSDP, DeepSpeed), gradient accumulation and mixed
precision work unchanged. This module stays light: the work happens in ``session``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from stillhouse.kernel.interfaces import (
    ChatModel,
    Loss,
    StudentConfig,
    StudentTrainer,
    TeacherConfig,
    TrainConfig,
    TrainJob,
    TrainOutcome,
)
from stillhouse.plugins.students.config import HfStudentConfig, HfTrainConfig, as_hf_config


class HfStudentTrainer(StudentTrainer[HfStudentConfig]):
    name = "hf"
    description = "transformers Trainer: full or LoRA fine-tuning, packing, SFT and logit distillation, resumable."
    Config = HfStudentConfig
    Train = HfTrainConfig

    def __init__(self, config: StudentConfig | None = None) -> None:
        # The kernel's plain StudentConfig too: a model evaluated by path has no hf options.
        super().__init__(as_hf_config(config) if config is not None else None)

    @classmethod
    def check_config(
        cls, student: StudentConfig, train: TrainConfig, teacher: TeacherConfig | None, loss: Loss[Any]
    ) -> None:
        """``train.on_policy`` with a teacher that cannot score tokens, ``seq_kd`` with a served
        teacher, or a loss without a teacher-distribution term: refused at ``still config check``."""
        on_policy = getattr(train, "on_policy", None)
        if on_policy is not None:
            from stillhouse.plugins.students.on_policy_checks import static_on_policy_check

            static_on_policy_check(on_policy, teacher, loss.signals_needed(), loss.name)

    def train(self, job: TrainJob) -> TrainOutcome:
        from stillhouse.plugins.students.session import TrainingSession

        return TrainingSession(self.config, job).run()

    def load(self, model_dir: Path | None) -> ChatModel:
        """The trained folder, or (None) the untouched student: ``student.model`` as pretrained, or
        with ``init = "teacher-layers"`` the kept layers of ``student.model`` before training."""
        from stillhouse.plugins.students.loading import load_chat_model

        return load_chat_model(self.config, model_dir)
