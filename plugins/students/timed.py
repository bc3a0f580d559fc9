"""One forced-length, timed generation: the measurement behind the evaluate stage's timing phase."""

from __future__ import annotations

import time
from typing import Any

from stillhouse.kernel.interfaces import Message, Timing


class _FirstTokenClock:
    """A generate() streamer that notes when the first new token arrives (generate first hands it
    the prompt, then every new token)."""

    def __init__(self) -> None:
        self.calls = 0
        self.first_token_at: float | None = None

    def put(self, value: Any) -> None:
        self.calls += 1
        if self.calls == 2 and self.first_token_at is None:
            self.first_token_at = time.perf_counter()

    def end(self) -> None:
        pass


def timed_generate(model: Any, tokenizer: Any, prompt: list[Message], new_tokens: int) -> Timing:
    import torch

    from stillhouse.plugins.hf_models import render_prompts

    device = next(model.parameters()).device
    text = render_prompts(tokenizer, [list(prompt)])[0]
    enc = tokenizer([text], return_tensors="pt", add_special_tokens=False)
    enc = {k: v.to(device) for k, v in enc.items()}
    clock = _FirstTokenClock()
    cuda = device.type == "cuda"
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
    start = time.perf_counter()
    with torch.inference_mode():
        out = model.generate(
            **enc,
            max_new_tokens=new_tokens,
            min_new_tokens=new_tokens,  # EOS suppressed until then: every model does the same work
            do_sample=False,
            temperature=None,
            top_p=None,
            top_k=None,
            pad_token_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id,
            streamer=clock,
        )
    if cuda:
        torch.cuda.synchronize()
    total_ms = (time.perf_counter() - start) * 1000
    generated = int(out.shape[1] - enc["input_ids"].shape[1])
    ttft = (clock.first_token_at - start) * 1000 if clock.first_token_at is not None else None
    peak = int(torch.cuda.max_memory_allocated(device) - before) if cuda else None
    return Timing(total_ms, generated, ttft, forced=generated == new_tokens, peak_bytes=peak)
