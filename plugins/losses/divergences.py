"""Token-level distillation losses on the teacher's top-k distribution.

Each defines the divergence between the restricted, renormalised teacher distribution ``p`` and
student distribution ``q`` (see ``plugins.losses.base`` for exactly how both are built); the base
class mixes it with cross-entropy as ``(1 - alpha) * CE + alpha * T^2 * D``.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from pydantic import Field

from stillhouse.plugins.losses.base import DistillConfig, LogitDistillLoss

if TYPE_CHECKING:  # pragma: no cover - typing only
    import torch


def kl(log_a: torch.Tensor, log_b: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """[N] KL(a || b) = sum_i a_i (log a_i - log b_i), over valid slots only."""
    return (log_a.exp() * (log_a - log_b) * valid).sum(-1)


def log_mixture(log_a: torch.Tensor, log_b: torch.Tensor, weight_a: float, valid: torch.Tensor) -> torch.Tensor:
    """log(weight_a * a + (1 - weight_a) * b), computed in log space; 0 in empty slots."""
    import torch

    stacked = torch.stack([log_a + math.log(weight_a), log_b + math.log(1 - weight_a)])
    return torch.logsumexp(stacked, dim=0).masked_fill(~valid, 0.0)


class ForwardKL(LogitDistillLoss[DistillConfig]):
    """KL(p || q): the student covers every token the teacher likes (mean-seeking; classic KD)."""

    name = "forward_kl"
    description = "Forward KL to the teacher's top-k distribution (Hinton KD), mixed with cross-entropy."

    def divergence(self, log_p: torch.Tensor, log_q: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        return kl(log_p, log_q, valid)


class ReverseKL(LogitDistillLoss[DistillConfig]):
    """KL(q || p): the student concentrates on the teacher's main modes (MiniLLM)."""

    name = "reverse_kl"
    description = "Reverse KL to the teacher's top-k distribution (mode-seeking), mixed with cross-entropy."

    def divergence(self, log_p: torch.Tensor, log_q: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        return kl(log_q, log_p, valid)


class JsdConfig(DistillConfig):
    beta: float = Field(
        0.5,
        gt=0,
        lt=1,
        description="Mixture weight: m = beta*p + (1-beta)*q, JSD = beta*KL(p||m) + (1-beta)*KL(q||m).",
    )


class GeneralizedJSD(LogitDistillLoss[JsdConfig]):
    """Generalised Jensen-Shannon divergence (GKD, Agarwal et al. 2024); beta = 0.5 is the symmetric JSD."""

    name = "jsd"
    description = "Generalised Jensen-Shannon divergence with weight beta, mixed with cross-entropy."
    Config = JsdConfig

    def divergence(self, log_p: torch.Tensor, log_q: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        beta = self.config.beta
        log_m = log_mixture(log_p, log_q, beta, valid)
        return beta * kl(log_p, log_m, valid) + (1 - beta) * kl(log_q, log_m, valid)


class SkewKLConfig(DistillConfig):
    skew: float = Field(
        0.1,
        ge=0,
        lt=1,
        description="DistiLLM's skew alpha: KL(p || skew*p + (1-skew)*q). 0 gives forward KL.",
    )
    reverse: bool = Field(False, description="Skew reverse KL instead: KL(q || skew*q + (1-skew)*p).")


class SkewKL(LogitDistillLoss[SkewKLConfig]):
    """Skew KL (DistiLLM, Ko et al. 2024): KL against a mixture, bounded and stable when q is near 0."""

    name = "skew_kl"
    description = "DistiLLM skew KL (or skew reverse KL) on the teacher's top-k, mixed with cross-entropy."
    Config = SkewKLConfig

    def divergence(self, log_p: torch.Tensor, log_q: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        skew = self.config.skew
        if self.config.reverse:
            log_p, log_q = log_q, log_p
        if skew == 0:
            return kl(log_p, log_q, valid)
        return kl(log_p, log_mixture(log_p, log_q, skew, valid), valid)


class TotalVariation(LogitDistillLoss[DistillConfig]):
    """Total variation distance 0.5 * sum |p - q| (bounded in [0, 1])."""

    name = "tvd"
    description = "Total variation distance to the teacher's top-k distribution, mixed with cross-entropy."

    def divergence(self, log_p: torch.Tensor, log_q: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        return 0.5 * ((log_p.exp() - log_q.exp()).abs() * valid).sum(-1)
