"""Token-by-token streaming for ``still serve`` (``stream=true``): one request's reply sent while it
is generated, not after.

``generate`` runs on a thread of its own with transformers' ``TextIteratorStreamer``; the handler
takes each decoded piece as it comes (the streamer yields text at word boundaries) and the server
writes it as a ``chat.completion.chunk`` at once. The text sent equals what the batched path
returns for the same request (``generate_chat``): leading and trailing whitespace is held back
until more text follows, and so is any tail that could begin a ``stop`` string, so the reply is
cut before a stop string that a later token completes.

Streamed requests do not join the batches: each runs alone, one at a time per server (a lock),
on a private copy of the tokenizer (fast tokenizers refuse concurrent use).
"""

from __future__ import annotations

import asyncio
import copy
import threading
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from stillhouse.kernel.interfaces import Message
from stillhouse.plugins.teachers.batching import GenParams


@dataclass
class StreamResult:
    """Filled in as the stream ends: what the usage and the last chunk report."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str = "length"


def releasable(text: str, stop: Sequence[str]) -> int:
    """How much of ``text`` can be sent now: not trailing whitespace, nor a tail that may be the
    start of a stop string."""
    end = len(text.rstrip())
    for s in stop:
        for k in range(min(len(s) - 1, end), 0, -1):
            if text[:end].endswith(s[:k]):
                end -= k
                break
    return end


class TokenStreamer:
    """Streams replies of one (model, tokenizer)."""

    def __init__(self, model: Any, tokenizer: Any) -> None:
        self.model = model
        self.tokenizer = copy.deepcopy(tokenizer)
        self.lock = threading.Lock()

    def _generate(self, messages: list[Message], params: GenParams, streamer: Any, result: StreamResult) -> None:
        import torch

        tokenizer = self.tokenizer
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        device = next(self.model.parameters()).device
        enc = {k: v.to(device) for k, v in tokenizer(text, return_tensors="pt", add_special_tokens=False).items()}
        kwargs: dict[str, Any] = {
            "max_new_tokens": params.max_new_tokens,
            "pad_token_id": tokenizer.pad_token_id,
            "eos_token_id": tokenizer.eos_token_id,
        }
        if params.temperature > 0:
            kwargs.update(do_sample=True, temperature=params.temperature, top_p=params.top_p or 1.0)
        else:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        if params.stop:
            kwargs.update(stop_strings=list(params.stop), tokenizer=tokenizer)
        with self.lock:
            if params.seed is not None:
                torch.manual_seed(params.seed)
            with torch.inference_mode():
                out = self.model.generate(**enc, streamer=streamer, **kwargs)
        ids = out[0, enc["input_ids"].shape[1] :].tolist()
        if tokenizer.eos_token_id in ids:
            ids = ids[: ids.index(tokenizer.eos_token_id)]
            result.finish_reason = "stop"
        result.prompt_tokens = int(enc["input_ids"].shape[1])
        result.completion_tokens = len([t for t in ids if t != tokenizer.pad_token_id])

    async def stream(self, messages: list[Message], params: GenParams, result: StreamResult) -> AsyncIterator[str]:
        """The reply's text, piece by piece as generated; ``result`` is complete once this ends."""
        from transformers import TextIteratorStreamer

        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True)
        failure: list[BaseException] = []

        def run() -> None:
            try:
                self._generate(messages, params, streamer, result)
            except BaseException as exc:  # noqa: BLE001 - re-raised in the handler
                failure.append(exc)
                streamer.end()

        thread = threading.Thread(target=run, daemon=True, name="stillhouse-stream")
        thread.start()
        pieces = iter(streamer)
        text, sent = "", 0
        while (piece := await asyncio.to_thread(next, pieces, None)) is not None:
            text = (text + piece).lstrip() if not text else text + piece
            cut = min((text.find(s) for s in params.stop if s in text), default=-1)
            if cut >= 0:  # a stop string: the reply ends before it (generation stops within a token)
                text = text[:cut]
                result.finish_reason = "stop"
                break
            end = releasable(text, params.stop)
            if end > sent:
                yield text[sent:end]
                sent = end
        await asyncio.to_thread(thread.join)
        if failure:
            raise failure[0]
        rest = text.rstrip()[sent:]
        if rest:
            yield rest
