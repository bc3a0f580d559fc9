"""Shared pieces of the loss plugins: configs, token cross-entropy, reduction, and the top-k
restriction that turns stored teacher log-probs into a distribution.

**Top-k renormalisation (exactly).** At a target position the teacher gives k ids ``S`` with
log-probs ``l_i`` (full-vocabulary log-softmax at T = 1). The teacher side is

    p_T(i) = exp(l_i / T) / sum_{j in S} exp(l_j / T)        for i in S

which equals the teacher's temperature-T distribution conditioned on S (the full-vocabulary
normaliser cancels). The student side is restricted to the *same* ids and renormalised the same way:

    q_T(i) = exp(z_i / T) / sum_{j in S} exp(z_j / T)        z = student logits at the position

so both are proper distributions on S and every divergence (forward/reverse KL, JSD, skew KL, TVD)
is well defined. Mass the student puts outside S is invisible to the distillation term; the
``(1 - alpha)`` cross-entropy on the teacher's text keeps the full-vocabulary distribution anchored.
Empty slots (id -1) are left out of S; a position with no slot left gets no distillation term.

**Total.** ``loss = (1 - alpha) * CE + alpha * T^2 * D`` where CE is the token cross-entropy on the
labels (at T = 1) and D the divergence; T^2 keeps the distillation gradients' scale independent of
T (Hinton et al., 2015). Both terms are weighted token sums divided by the same normaliser
(``LossInputs.num_items`` or this batch's target-token count).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import Field
from typing_extensions import TypeVar

from stillhouse.kernel.interfaces import IGNORE_INDEX, Loss, LossInputs, StrictModel, TeacherSignal

if TYPE_CHECKING:  # pragma: no cover - typing only
    import torch


class MixConfig(StrictModel):
    """Options of every loss that mixes a term with cross-entropy: the term's weight."""

    alpha: float = Field(
        0.5,
        ge=0,
        le=1,
        description="Weight of the distillation term; 1 - alpha weighs cross-entropy on the teacher's text.",
    )


class DistillConfig(MixConfig):
    """Options shared by the token-level losses."""

    temperature: float = Field(
        1.0, gt=0, le=100, description="Softmax temperature T of both distributions; the term is scaled by T^2."
    )


def reduce_tokens(values: torch.Tensor, weights: torch.Tensor | None, normaliser: Any) -> torch.Tensor:
    """Weighted sum of per-token values divided by ``normaliser`` (a count, never zero)."""
    total = (values * weights).sum() if weights is not None else values.sum()
    return total / normaliser


def normaliser_of(inputs: LossInputs, n_tokens: int) -> Any:
    """What token sums are divided by: the trainer's global count, else this batch's target count."""
    if inputs.num_items is not None:
        return inputs.num_items
    return max(n_tokens, 1)


class SelectedBatch:
    """The target positions of a batch, gathered once: [N, V] logits, [N] labels, [N] weights."""

    def __init__(self, inputs: LossInputs) -> None:
        mask = inputs.labels != IGNORE_INDEX
        self.mask = mask
        self.logits = inputs.logits[mask].float()
        self.labels = inputs.labels[mask]
        self.weights = inputs.weights[mask].float() if inputs.weights is not None else None
        self.normaliser = normaliser_of(inputs, int(self.labels.numel()))

    def cross_entropy(self) -> torch.Tensor:
        """[N] token cross-entropy of the student on the labels (temperature 1)."""
        import torch.nn.functional as F

        return F.cross_entropy(self.logits, self.labels, reduction="none")

    def reduce(self, values: torch.Tensor) -> torch.Tensor:
        return reduce_tokens(values, self.weights, self.normaliser)


def topk_distributions(
    student_logits: torch.Tensor, teacher_ids: torch.Tensor, teacher_logprobs: torch.Tensor, temperature: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Teacher and student log-distributions restricted to the teacher's top-k ids (see module doc).

    Arguments are [N, V], [N, k], [N, k]. Returns ``(log_p, log_q, valid, has_teacher)``: [N, k]
    log-probs with 0 (not -inf) in empty slots so products stay finite in the backward pass, the
    [N, k] slot mask, and the [N] mask of positions with at least one slot.
    """
    import torch

    valid = (teacher_ids >= 0) & torch.isfinite(teacher_logprobs)
    has_teacher = valid.any(dim=-1)
    # A position without any slot would make log_softmax all -inf (NaN): give it a dummy uniform
    # row and drop its value through ``has_teacher`` later.
    usable = valid | ~has_teacher.unsqueeze(-1)
    safe_ids = teacher_ids.clamp(min=0).long()
    z = torch.gather(student_logits, -1, safe_ids) / temperature
    t = torch.where(valid, teacher_logprobs.float(), torch.zeros_like(teacher_logprobs, dtype=torch.float32))
    neg_inf = torch.finfo(torch.float32).min
    log_q = torch.log_softmax(z.masked_fill(~usable, neg_inf), dim=-1).masked_fill(~usable, 0.0)
    log_p = torch.log_softmax((t / temperature).masked_fill(~usable, neg_inf), dim=-1).masked_fill(~usable, 0.0)
    return log_p, log_q, usable, has_teacher


MixConfigT = TypeVar("MixConfigT", bound=MixConfig, default=MixConfig)


class MixedLoss(Loss[MixConfigT]):
    """``alpha`` and the CE half of ``(1 - alpha) * CE + alpha * term``."""

    def signals_needed(self) -> frozenset[TeacherSignal]:
        """With alpha = 0 the loss is pure cross-entropy: no teacher signal is needed."""
        return frozenset() if self.config.alpha == 0 else self.requires

    def mix(self, batch: SelectedBatch, term: torch.Tensor | None) -> torch.Tensor:
        alpha = self.config.alpha
        loss = batch.logits.sum() * 0.0  # keeps the graph (and DDP) happy when a batch has no target
        if alpha < 1:
            loss = loss + (1 - alpha) * batch.reduce(batch.cross_entropy())
        if term is not None and alpha > 0:
            loss = loss + alpha * term
        return loss


DistillConfigT = TypeVar("DistillConfigT", bound=DistillConfig, default=DistillConfig)


class LogitDistillLoss(MixedLoss[DistillConfigT]):
    """Base of the token-level losses: subclasses define :meth:`divergence` on restricted distributions."""

    Config = DistillConfig
    requires: ClassVar[frozenset[TeacherSignal]] = frozenset({"teacher_logprobs"})
    target_logits_only = True

    def divergence(self, log_p: torch.Tensor, log_q: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """[N] divergence between teacher ``p`` and student ``q`` (both [N, k] log-probs on the same ids)."""
        raise NotImplementedError

    def __call__(self, inputs: LossInputs) -> torch.Tensor:
        batch = SelectedBatch(inputs)
        term = None
        if self.config.alpha > 0:
            if inputs.teacher_ids is None or inputs.teacher_logprobs is None:
                raise ValueError(f"loss '{self.name}' needs teacher_ids and teacher_logprobs in LossInputs")
            ids = inputs.teacher_ids[batch.mask]
            lps = inputs.teacher_logprobs[batch.mask]
            temperature = self.config.temperature
            log_p, log_q, valid, has_teacher = topk_distributions(batch.logits, ids, lps, temperature)
            per_token = self.divergence(log_p, log_q, valid) * has_teacher
            term = temperature**2 * batch.reduce(per_token)
        return self.mix(batch, term)
