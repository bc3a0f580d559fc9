"""``uld``: Universal Logit Distillation (Boizard et al., 2024) for a teacher with another tokenizer.

Two next-token distributions over *different* vocabularies cannot be compared id by id, but their
sorted probability vectors can: ULD takes the Wasserstein-1 distance between them under a cost that
ignores token identity, which for sorted vectors is the L1 distance ``sum_i |p_(i) - q_(i)|``.

**What is compared (per aligned position).** The teacher gives only its top-k log-probs (an API's
``top_logprobs``, or a local teacher's top-k over its own vocabulary), so its tail is unknown.
Default ``tail = "bucket"``: both sides are coarse-grained to the k largest probabilities plus one
bucket holding the rest of the mass,

    D = sum_{i<k} |p_(i) - q_(i)|  +  |(1 - sum_i p_(i)) - (1 - sum_i q_(i))|

with ``p_(i)`` the teacher's probabilities (temperature 1, exactly as stored, not renormalised; empty
slots are 0: padding to equal length) and ``q_(i)`` the student's k largest full-vocabulary
probabilities. This is the ULD distance of the two distributions with the tail merged (a lower bound
of the full one), and it needs no guess about how the teacher spreads its tail.
``tail = "renormalise"`` instead renormalises both k-vectors to sum to 1 (the paper's setting with a
truncated vocabulary); it ignores how much mass the teacher leaves outside its top-k.

**Hybrid (``hybrid = true``, GOLD-style).** Slots whose teacher token text is exactly one student
token (their id column is >= 0) are compared token by token: forward KL between teacher and student
restricted and renormalised to those ids (as ``forward_kl`` does), plus the ULD bucket distance on
the rest (teacher's unmatched probabilities vs the student's largest probabilities *outside* the
matched ids; both tails count the matched mass as accounted for). Where the vocabularies agree this
keeps token identity; elsewhere ULD.

**Total.** ``loss = (1 - alpha) * CE + alpha * D`` (token sums over the same normaliser as every loss).
A slot counts when its log-prob is finite (ids may be -1: a teacher token that is no student token).
Positions without a finite slot get cross-entropy only. Gradients reach only the student: the teacher
values come from the stored top-k and are detached.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Literal

from pydantic import Field

from stillhouse.kernel.interfaces import LossInputs, TeacherSignal
from stillhouse.plugins.losses.base import MixConfig, MixedLoss, SelectedBatch, topk_distributions

if TYPE_CHECKING:  # pragma: no cover - typing only
    import torch


class UldConfig(MixConfig):
    alpha: float = Field(0.5, ge=0, le=1, description="Weight of the ULD term; 1 - alpha weighs cross-entropy.")
    tail: Literal["bucket", "renormalise"] = Field(
        "bucket",
        description='"bucket": compare the k largest probabilities plus one bucket for the rest of the mass; '
        '"renormalise": renormalise both k-vectors to 1 first.',
    )
    hybrid: bool = Field(
        False,
        description="GOLD-style: forward KL on teacher tokens that are exactly one student token, ULD on the rest.",
    )


def sorted_teacher(teacher_logprobs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """[N, k] teacher probabilities sorted descending (0 in empty slots) and the [N] row mask."""
    import torch

    valid = torch.isfinite(teacher_logprobs)
    probs = torch.where(valid, teacher_logprobs.float().exp(), torch.zeros_like(teacher_logprobs, dtype=torch.float32))
    return probs.sort(dim=-1, descending=True).values.detach(), valid.any(dim=-1)


def uld_distance(teacher_sorted: torch.Tensor, student_probs: torch.Tensor, tail: str) -> torch.Tensor:
    """[N] ULD distance between [N, k] sorted teacher probabilities and [N, V] student probabilities
    (module doc). Teacher rows may be all zero (no slot); the caller masks them."""
    import torch

    k = min(teacher_sorted.shape[-1], student_probs.shape[-1])
    student_top = torch.topk(student_probs, k, dim=-1).values
    teacher_top = teacher_sorted[:, :k]
    if tail == "renormalise":
        teacher_top = teacher_top / teacher_top.sum(-1, keepdim=True).clamp_min(1e-12)
        student_top = student_top / student_top.sum(-1, keepdim=True).clamp_min(1e-12)
        return (teacher_top - student_top).abs().sum(-1)
    ranks = (teacher_top - student_top).abs().sum(-1)
    return ranks + (student_top.sum(-1) - teacher_top.sum(-1)).abs()


class UniversalLogitDistillation(MixedLoss[UldConfig]):
    name = "uld"
    description = (
        "Universal Logit Distillation: L1 between sorted teacher and student probabilities (teacher of any "
        "tokenizer, aligned by characters), plus cross-entropy."
    )
    Config = UldConfig
    requires: ClassVar[frozenset[TeacherSignal]] = frozenset({"teacher_logprobs"})
    cross_tokenizer: ClassVar[bool] = True
    """The trainer aligns the teacher's own tokens to the student's by characters (no shared vocabulary)."""
    target_logits_only = True

    def __call__(self, inputs: LossInputs) -> torch.Tensor:
        batch = SelectedBatch(inputs)
        term = None
        if self.config.alpha > 0:
            if inputs.teacher_logprobs is None:
                raise ValueError("loss 'uld' needs teacher_logprobs in LossInputs")
            lps = inputs.teacher_logprobs[batch.mask].detach()
            ids = inputs.teacher_ids[batch.mask] if inputs.teacher_ids is not None else None
            per_token = self.hybrid(batch, ids, lps) if self.config.hybrid and ids is not None else self.plain(batch, lps)
            term = batch.reduce(per_token)
        return self.mix(batch, term)

    def plain(self, batch: SelectedBatch, lps: torch.Tensor) -> torch.Tensor:
        import torch

        teacher, has_teacher = sorted_teacher(lps)
        return uld_distance(teacher, torch.softmax(batch.logits, dim=-1), self.config.tail) * has_teacher

    def hybrid(self, batch: SelectedBatch, ids: torch.Tensor, lps: torch.Tensor) -> torch.Tensor:
        import torch

        finite = torch.isfinite(lps)
        matched = finite & (ids >= 0)
        # Token-level part: forward KL on the matched ids, both sides renormalised over them.
        log_p, log_q, usable, has_match = topk_distributions(
            batch.logits, torch.where(matched, ids, torch.full_like(ids, -1)), lps, 1.0
        )
        kl = (log_p.exp() * (log_p - log_q) * usable).sum(-1) * has_match
        # Sorted part: unmatched teacher slots vs the student's probabilities outside the matched ids.
        probs = torch.softmax(batch.logits, dim=-1)
        # scatter_add, not scatter: an unmatched slot (id -1 -> 0) must not overwrite a match at id 0
        hits = torch.zeros_like(probs).scatter_add_(-1, ids.clamp(min=0).long(), matched.float())
        matched_mask = hits > 0
        teacher_rest, _ = sorted_teacher(torch.where(matched, torch.full_like(lps, float("-inf")), lps))
        student_rest = probs.masked_fill(matched_mask, 0.0)
        k = teacher_rest.shape[-1]
        student_top = torch.topk(student_rest, min(k, student_rest.shape[-1]), dim=-1).values
        ranks = (teacher_rest - student_top).abs().sum(-1)
        teacher_tail = 1 - torch.where(finite, lps.float().exp(), torch.zeros_like(lps, dtype=torch.float32)).sum(-1)
        student_tail = 1 - (probs * matched_mask).sum(-1) - student_top.sum(-1)
        rest = (ranks + (teacher_tail - student_tail).abs()) * finite.any(-1)
        return kl + rest
