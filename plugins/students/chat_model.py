"""A local transformers model as a :class:`ChatModel` for evaluation and ``still serve``."""

from __future__ import annotations

import resource
import sys
from collections.abc import Sequence
from typing import Any

from stillhouse.kernel.interfaces import Answer, ChatModel, Message


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

    def answer(self, prompts: Sequence[list[Message]], *, max_new_tokens: int, batch_size: int) -> list[Answer]:
        from stillhouse.plugins.hf_models import generate_chat

        outputs = generate_chat(
            self.model, self.tokenizer, list(prompts), max_new_tokens=max_new_tokens, batch_size=batch_size
        )
        return [Answer(o.text, o.latency_ms, o.prompt_tokens, o.completion_tokens, None) for o in outputs]

    def footprint(self) -> dict[str, Any]:
        import torch

        from stillhouse.plugins.hf_models import count_parameters, folder_bytes

        info: dict[str, Any] = {
            "parameters": count_parameters(self.model),
            "bytes_on_disk": folder_bytes(self.disk_path) if self.disk_path else None,
            "peak_memory_bytes": peak_rss_bytes(),
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
