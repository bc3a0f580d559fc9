"""Built-in distillation losses.

``sft`` (cross-entropy on the teacher's text), the token-level ``forward_kl``, ``reverse_kl``,
``jsd``, ``skew_kl`` and ``tvd`` on the teacher's stored top-k log-probs, ``uld`` (the same top-k from a
teacher with another tokenizer), ``hidden_mse`` / ``hidden_cosine`` (layer map) and
``attention_relation`` (MiniLMv2 relation transfer) from a live local teacher.
Every loss takes a :class:`~stillhouse.kernel.interfaces.LossInputs` and returns a scalar.
"""

from __future__ import annotations

from typing import Any

from stillhouse.kernel import hookimpl
from stillhouse.kernel.interfaces import Loss, Register


@hookimpl
def register_losses(register: Register[Loss[Any]]) -> None:
    from stillhouse.plugins.losses.attention import AttentionRelation
    from stillhouse.plugins.losses.divergences import ForwardKL, GeneralizedJSD, ReverseKL, SkewKL, TotalVariation
    from stillhouse.plugins.losses.hidden import HiddenCosine, HiddenMSE
    from stillhouse.plugins.losses.sft import SftLoss
    from stillhouse.plugins.losses.uld import UniversalLogitDistillation

    for cls in (
        SftLoss,
        ForwardKL,
        ReverseKL,
        GeneralizedJSD,
        SkewKL,
        TotalVariation,
        HiddenMSE,
        HiddenCosine,
        AttentionRelation,
        UniversalLogitDistillation,
    ):
        register(cls)
