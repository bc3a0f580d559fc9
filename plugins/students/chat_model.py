"""A local transformers model as a :class:`ChatModel` for evaluation and ``still serve``.

Besides free generation it can time one forced-length request (:meth:`HfChatModel.time_request`,
for the evaluate stage's interleaved timing) and score a fixed set of replies by log-likelihood
(:meth:`HfChatModel.score_choices`, rank classification). Set ``choices`` to serve it with
constrained choice: :meth:`answer` then returns the most likely label instead of generating.
"""

from __future__ import annotations

import resource
import sys
from collections.abc import Sequence
from typing import Any

from stillhouse.kernel.interfaces import Answer, ChatModel, Message, Timing


def peak_rss_bytes() -> int:
    """This process's peak resident set size (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


class HfChatModel(ChatModel):
    def __init__(self, model: Any, tokenizer: Any, *, name: str, disk_path: str | None) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.name = name
        self.disk_path = disk_path
        self.choices: list[str] | None = None
        """Constrained choice: when set, :meth:`answer` replies with the most likely of these."""

    def answer(self, prompts: Sequence[list[Message]], *, max_new_tokens: int, batch_size: int) -> list[Answer]:
        from stillhouse.plugins.hf_models import generate_chat

        if self.choices:
            return self._choose(prompts, self.choices, batch_size)

        outputs = generate_chat(
            self.model, self.tokenizer, list(prompts), max_new_tokens=max_new_tokens, batch_size=batch_size
        )
        return [Answer(o.text, o.latency_ms, o.prompt_tokens, o.completion_tokens, None) for o in outputs]

    def _choose(self, prompts: Sequence[list[Message]], choices: list[str], batch_size: int) -> list[Answer]:
        import time

        start = time.perf_counter()
        scores = self.score_choices(prompts, choices, batch_size=batch_size)
        elapsed = (time.perf_counter() - start) * 1000
        return [Answer(choices[max(range(len(choices)), key=row.__getitem__)], elapsed) for row in scores]

    def score_choices(self, prompts: Sequence[list[Message]], choices: Sequence[str], *, batch_size: int) -> list[list[float]]:
        """Sum of the log-probabilities of each choice's tokens right after the assistant prefix
        (the chat template's generation prompt), not length-normalised; batched forward passes."""
        from stillhouse.plugins.students.choices import score_choices

        return score_choices(self.model, self.tokenizer, list(prompts), list(choices), batch_size=batch_size)

    def time_request(self, prompt: list[Message], *, new_tokens: int) -> Timing:
        """Greedy generation of exactly ``new_tokens`` tokens (``min_new_tokens`` = ``max_new_tokens``)
        for one prompt; the time to first token is taken when generate streams the first new token.
        On CUDA ``peak_bytes`` is the allocator's peak during the request above what was allocated
        before it (activations and KV cache, not the weights)."""
        from stillhouse.plugins.students.timed import timed_generate

        return timed_generate(self.model, self.tokenizer, prompt, new_tokens)

    def footprint(self) -> dict[str, Any]:
        import torch

        from stillhouse.plugins.hf_models import count_parameters, folder_bytes

        info: dict[str, Any] = {
            "parameters": count_parameters(self.model),
            "bytes_on_disk": folder_bytes(self.disk_path) if self.disk_path else None,
            "peak_memory_bytes": peak_rss_bytes(),
            # The weights as loaded: parameters and buffers × their dtype's size.
            "weights_bytes": sum(t.numel() * t.element_size() for t in (*self.model.parameters(), *self.model.buffers())),
        }
        if next(self.model.parameters()).device.type == "cuda":
            info["gpu_peak_memory_bytes"] = int(torch.cuda.max_memory_allocated())
        return info

    def close(self) -> None:
        import gc

        import torch

        self.model = None
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
