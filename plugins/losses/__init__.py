"""Built-in distillation losses.

``sft`` (cross-entropy on the teacher's text), the token-level ``forward_kl``, ``reverse_kl``,
``jsd``, ``skew_kl`` and ``tvd`` on the teacher's stored top-k log-probs, and ``hidden_mse``.
Every loss takes a :class:`~stillhouse.kernel.interfaces.LossInputs` and returns a scalar.
"""

from __future__ import annotations

from typing import Any

from stillhouse.kernel import hookimpl
from stillhouse.kernel.interfaces import Loss, Register


@hookimpl
def register_losses(register: Register[Loss[Any]]) -> None:
    from stillhouse.plugins.losses.divergences import ForwardKL, GeneralizedJSD, ReverseKL, SkewKL, TotalVariation
    from stillhouse.plugins.losses.hidden import HiddenMSE
    from stillhouse.plugins.losses.sft import SftLoss

    for cls in (SftLoss, ForwardKL, ReverseKL, GeneralizedJSD, SkewKL, TotalVariation, HiddenMSE):
        register(cls)
