"""What a teacher call costs: per-token prices, and a prompt-token estimate for budgets and tpm limits.

A price is known or it is not: an unknown price makes costs None, never a made-up 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from stillhouse.kernel.interfaces import Message
from stillhouse.kernel.teaching.config import PriceConfig


@dataclass(frozen=True)
class Price:
    """USD per token; ``source`` says where it came from (config, local, or a provider's price map)."""

    input: float
    output: float
    source: str

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        return prompt_tokens * self.input + completion_tokens * self.output

    @classmethod
    def configured(cls, config: PriceConfig) -> Price:
        return cls(config.input_per_mtok / 1e6, config.output_per_mtok / 1e6, "config")


def estimate_prompt_tokens(messages: Sequence[Message]) -> int:
    """About four characters a token, plus the chat format's few tokens per message."""
    return sum(len(m["content"]) // 4 + 4 for m in messages) + 3
