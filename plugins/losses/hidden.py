"""``hidden_mse``: align a student hidden layer with a teacher hidden layer (FitNets-style).

When the widths differ, a learned linear projection maps the student's hidden size onto the
teacher's; the trainer asks :meth:`HiddenMSE.trainable_module` for it and trains it with the
student (it is dropped on export). The teacher runs live on each batch for this loss: hidden states
(D floats per token) are too large to store the way top-k log-probs are.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from pydantic import Field

from stillhouse.kernel.interfaces import LossInputs, TeacherSignal
from stillhouse.plugins.losses.base import MixConfig, MixedLoss, SelectedBatch

if TYPE_CHECKING:  # pragma: no cover - typing only
    import torch


class HiddenMseConfig(MixConfig):
    """No temperature: there is no softmax in this term. ``alpha`` weighs it against cross-entropy."""

    alpha: float = Field(
        0.5, ge=0, le=1, description="Weight of the hidden-state term; 1 - alpha weighs cross-entropy."
    )
    student_layer: int = Field(-1, description="Index into the student's hidden states (0 = embeddings, -1 = last).")
    teacher_layer: int = Field(-1, description="Index into the teacher's hidden states (0 = embeddings, -1 = last).")


class HiddenMSE(MixedLoss[HiddenMseConfig]):
    name = "hidden_mse"
    description = (
        "Mean squared error between student and teacher hidden states (learned projection), plus cross-entropy."
    )
    Config = HiddenMseConfig
    requires: ClassVar[frozenset[TeacherSignal]] = frozenset({"teacher_hidden"})

    def __init__(self, config: HiddenMseConfig | None = None) -> None:
        super().__init__(config)
        self.projection: torch.nn.Linear | None = None

    def trainable_module(self, student_width: int, teacher_width: int) -> torch.nn.Module | None:
        """The projection student -> teacher width (an ``nn.Linear``), or None when widths match."""
        if student_width == teacher_width:
            self.projection = None
            return None
        from torch import nn

        self.projection = nn.Linear(student_width, teacher_width, bias=False)
        return self.projection

    def __call__(self, inputs: LossInputs) -> torch.Tensor:
        batch = SelectedBatch(inputs)
        term = None
        if self.config.alpha > 0:
            if not inputs.student_hidden or not inputs.teacher_hidden:
                raise ValueError("loss 'hidden_mse' needs student_hidden and teacher_hidden in LossInputs")
            student = inputs.student_hidden[self.config.student_layer][batch.mask]
            teacher = inputs.teacher_hidden[self.config.teacher_layer][batch.mask].float().detach()
            if self.projection is not None:
                student = self.projection(student.to(self.projection.weight.dtype))
            if student.shape[-1] != teacher.shape[-1]:
                raise ValueError(
                    f"hidden widths differ (student {student.shape[-1]}, teacher {teacher.shape[-1]}) "
                    "and no projection was built: call trainable_module(student_width, teacher_width) first"
                )
            per_token = (student.float() - teacher).pow(2).mean(-1)
            term = batch.reduce(per_token)
        return self.mix(batch, term)
