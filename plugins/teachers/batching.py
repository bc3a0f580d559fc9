"""Request batching for a local transformers model, shared by the ``hf/`` teacher and ``still serve``.

Concurrent requests each await :meth:`BatchingGenerator.generate`; a single runner task gathers
whatever is waiting (for ``gather_ms`` after the first arrival, or while the previous batch runs)
into one left-padded ``generate`` call of up to ``max_batch`` sequences. Requests with different
sampling settings never share a batch. The model runs on one executor thread, so the event loop
keeps accepting requests while a batch computes.
"""

from __future__ import annotations

import asyncio
import functools
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from stillhouse.kernel.interfaces import Message
from stillhouse.plugins.hf_models import GenerationOutput

# Set when the run that uses the local teacher asks to stop: generation in progress ends between
# two decoding steps instead of finishing its batch (minutes with a big batch on a CPU).
_STOP = threading.Event()


def request_stop() -> None:
    _STOP.set()


def clear_stop() -> None:
    _STOP.clear()


@dataclass(frozen=True)
class GenParams:
    """Sampling settings; requests with equal GenParams may share a batch."""

    max_new_tokens: int = 256
    temperature: float = 0.0
    top_p: float | None = None
    stop: tuple[str, ...] = ()
    seed: int | None = None
    top_logprobs: int | None = None

    @classmethod
    def from_openai(cls, params: dict[str, Any]) -> GenParams:
        """From OpenAI-style arguments (max_tokens, temperature, top_p, stop, seed, logprobs, top_logprobs)."""
        stop = params.get("stop") or ()
        if isinstance(stop, str):
            stop = (stop,)
        return cls(
            max_new_tokens=int(params.get("max_tokens") or params.get("max_completion_tokens") or 256),
            temperature=float(params.get("temperature") or 0.0),
            top_p=params.get("top_p"),
            stop=tuple(stop),
            seed=params.get("seed"),
            top_logprobs=int(params.get("top_logprobs") or 0) if params.get("logprobs") else None,
        )


@dataclass
class _Pending:
    messages: list[Message]
    params: GenParams
    n: int
    future: asyncio.Future[list[GenerationOutput]]


@dataclass
class BatchStats:
    batches: int = 0
    sequences: int = 0
    largest: int = 0
    sizes: list[int] = field(default_factory=list)


class BatchingGenerator:
    """Batches concurrent chat requests for one (model, tokenizer); use from one event loop."""

    def __init__(self, model: Any, tokenizer: Any, *, max_batch: int = 8, gather_ms: float = 5.0) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.max_batch = max(1, max_batch)
        self.gather_s = gather_ms / 1000
        self.stats = BatchStats()
        self._pending: list[_Pending] = []
        self._runner: asyncio.Task[None] | None = None
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="stillhouse-generate")

    async def generate(self, messages: list[Message], params: GenParams, n: int = 1) -> list[GenerationOutput]:
        """``n`` completions of one chat prompt, computed in a batch with concurrent requests."""
        future: asyncio.Future[list[GenerationOutput]] = asyncio.get_running_loop().create_future()
        self._pending.append(_Pending(messages, params, n, future))
        if self._runner is None or self._runner.done():
            self._runner = asyncio.create_task(self._run())
        return await future

    def _take_batch(self) -> list[_Pending]:
        first = self._pending[0]
        batch: list[_Pending] = []
        rest: list[_Pending] = []
        size = 0
        for item in self._pending:
            fits = size + item.n <= self.max_batch or not batch
            if item.params == first.params and fits:
                batch.append(item)
                size += item.n
            else:
                rest.append(item)
        self._pending = rest
        return batch

    async def _run(self) -> None:
        from stillhouse.plugins.hf_models import generate_chat

        loop = asyncio.get_running_loop()
        while self._pending:
            await asyncio.sleep(self.gather_s)  # let requests that arrive together share the batch
            batch = [item for item in self._take_batch() if not item.future.cancelled()]
            if not batch:
                continue
            params = batch[0].params
            prompts = [item.messages for item in batch for _ in range(item.n)]
            self.stats.batches += 1
            self.stats.sequences += len(prompts)
            self.stats.largest = max(self.stats.largest, len(prompts))
            self.stats.sizes.append(len(prompts))
            try:
                outputs = await loop.run_in_executor(
                    self._executor,
                    functools.partial(
                        generate_chat,
                        self.model,
                        self.tokenizer,
                        prompts,
                        max_new_tokens=params.max_new_tokens,
                        temperature=params.temperature,
                        top_p=params.top_p,
                        batch_size=len(prompts),
                        seed=params.seed,
                        stop=list(params.stop) or None,
                        top_logprobs=params.top_logprobs,
                        should_stop=_STOP.is_set,
                    ),
                )
            except Exception as exc:  # a failed batch fails its requests, not the runner
                for item in batch:
                    if not item.future.done():
                        item.future.set_exception(exc)
                continue
            start = 0
            for item in batch:
                if not item.future.done():
                    item.future.set_result(outputs[start : start + item.n])
                start += item.n

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
