"""``sft``: cross-entropy on the teacher's text (sequence-level distillation; works with any teacher)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field

from stillhouse.kernel.interfaces import Loss, LossInputs, StrictModel
from stillhouse.plugins.losses.base import SelectedBatch

if TYPE_CHECKING:  # pragma: no cover - typing only
    import torch


class SftConfig(StrictModel):
    """No temperature or alpha: there is no distillation term to weigh against the cross-entropy."""

    label_smoothing: float = Field(0.0, ge=0, lt=1, description="Label smoothing of the cross-entropy.")


class SftLoss(Loss[SftConfig]):
    name = "sft"
    description = "Cross-entropy on the teacher's answers (sequence-level KD); needs no teacher probabilities."
    Config = SftConfig
    target_logits_only = True

    def __call__(self, inputs: LossInputs) -> torch.Tensor:
        import torch.nn.functional as F

        batch = SelectedBatch(inputs)
        smoothing = self.config.label_smoothing
        per_token = F.cross_entropy(batch.logits, batch.labels, reduction="none", label_smoothing=smoothing)
        return batch.logits.sum() * 0.0 + batch.reduce(per_token)
