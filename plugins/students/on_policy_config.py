"""``[train.on_policy]``: on-policy distillation (GKD, Agarwal et al. 2024) for the ``hf`` trainer.

Light on purpose (pydantic only): the config check imports it; the training side lives in
``plugins.students.on_policy``.
"""

from __future__ import annotations

from pydantic import Field

from stillhouse.kernel.interfaces import StrictModel


class OnPolicyConfig(StrictModel):
    """For a ``fraction`` of training batches the student samples completions of the batch's prompts
    and the loss's divergence is taken on those tokens against a local teacher's distribution."""

    fraction: float = Field(
        0.5,
        ge=0,
        le=1,
        description="Share of training batches whose completions are sampled (GKD's lambda); 0 = off-policy only.",
    )
    temperature: float = Field(1.0, gt=0, le=10, description="Sampling temperature of the generated completions.")
    max_new_tokens: int = Field(128, ge=1, le=8192, description="Longest sampled completion, in tokens.")
    seq_kd: bool = Field(
        False,
        description="The teacher samples those completions instead of the student (sequence-level KD on fresh "
        "teacher samples); needs a local teacher too.",
    )
