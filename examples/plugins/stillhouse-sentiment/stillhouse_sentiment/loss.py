"""The ``label_smoothed_sft`` loss: cross-entropy on the teacher's text with label smoothing.

Per target token, with student log-probabilities ``log q`` over a vocabulary of V tokens:

    loss_t = (1 - eps) * -log q(y_t)  +  eps * mean_v(-log q(v))

i.e. cross-entropy against a target that puts ``1 - eps`` on the teacher's token and spreads
``eps`` evenly over the vocabulary (Szegedy et al., 2016). On a small, noisy set of teacher labels
it keeps the student from becoming over-confident in them. Tokens are weighted by their
``TrainPair.weight`` and the sum divided by the trainer's token count (``LossInputs.num_items``),
as every Stillhouse loss does, so gradient accumulation and packing leave the scale unchanged.

Written out rather than calling ``F.cross_entropy(label_smoothing=...)``: the package's tests check
it against that (and against Stillhouse's ``sft`` loss) as an independent implementation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field

from stillhouse.kernel.interfaces import Loss, StrictModel

if TYPE_CHECKING:  # torch is imported in __call__: `still --help` imports this package
    import torch

    from stillhouse.plugins.losses.inputs import LossInputs


class LabelSmoothedSftConfig(StrictModel):
    """``[train] loss_options`` of ``loss = "label_smoothed_sft"``."""

    epsilon: float = Field(0.1, ge=0, lt=1, description="Probability mass spread evenly over the vocabulary.")


class LabelSmoothedSft(Loss):
    name = "label_smoothed_sft"
    description = "Cross-entropy on the teacher's text with label smoothing (no teacher probabilities needed)."
    Config = LabelSmoothedSftConfig

    config: LabelSmoothedSftConfig

    def __call__(self, inputs: LossInputs) -> torch.Tensor:
        import torch

        mask = inputs.mask
        log_q = torch.log_softmax(inputs.logits[mask].float(), dim=-1)  # [N, V] at target positions
        labels = inputs.labels[mask]
        nll = -log_q.gather(-1, labels.unsqueeze(-1)).squeeze(-1)
        uniform = -log_q.mean(dim=-1)
        eps = self.config.epsilon
        per_token = (1 - eps) * nll + eps * uniform
        if inputs.weights is not None:
            per_token = per_token * inputs.weights[mask].float()
        normaliser = inputs.num_items if inputs.num_items is not None else max(int(labels.numel()), 1)
        # `logits.sum() * 0` keeps the result attached to the graph when a batch has no target token
        return inputs.logits.sum() * 0.0 + per_token.sum() / normaliser
