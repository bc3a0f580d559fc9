"""Local ``hf/`` teachers: a transformers model in this process.

``model = "hf/<hub id | folder | folder/file.gguf>"`` is answered by :class:`LocalCaller`, which
loads the model once and answers concurrent calls in batches (:mod:`.batching`); the kernel's
engine serves it like any API model (concurrency, retries, cache, accounting). Local calls cost
nothing.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass
from typing import Any

from stillhouse.kernel.interfaces import Completion, Message, TokenLogprob
from stillhouse.kernel.teaching import Failure, Reply
from stillhouse.plugins.teachers.batching import BatchingGenerator, GenParams
from stillhouse.plugins.teachers.config import LOCAL_PREFIX


@dataclass(frozen=True)
class LocalSettings:
    dtype: str = "auto"
    device: str = "auto"
    batch_size: int = 8


_settings: dict[str, LocalSettings] = {}
_models: dict[tuple[str, str, str], tuple[Any, Any]] = {}
_batchers: dict[tuple[str, int], BatchingGenerator] = {}
_load_lock = threading.Lock()


def load_model(spec: str, settings: LocalSettings) -> tuple[Any, Any]:
    """(model, tokenizer) for ``spec``, loaded once per (spec, dtype, device) in this process."""
    from stillhouse.plugins.hf_models import load_causal_lm

    key = (spec, settings.dtype, settings.device)
    with _load_lock:
        if key not in _models:
            _models[key] = load_causal_lm(spec, dtype=settings.dtype, device=settings.device)
        return _models[key]


async def batcher_for(spec: str) -> BatchingGenerator:
    """The batcher of ``spec`` on the running loop (loading the model off the loop the first time)."""
    loop = asyncio.get_running_loop()
    key = (spec, id(loop))
    if key not in _batchers:
        settings = _settings.get(spec, LocalSettings())
        model, tokenizer = await loop.run_in_executor(None, load_model, spec, settings)
        if key not in _batchers:  # another request may have finished loading meanwhile
            _batchers[key] = BatchingGenerator(model, tokenizer, max_batch=settings.batch_size)
    return _batchers[key]


def release(spec: str) -> None:
    """Forget the loaded model and batchers of ``spec`` (frees its memory once unreferenced)."""
    for batcher_key in [k for k in _batchers if k[0] == spec]:
        _batchers.pop(batcher_key).close()
    for model_key in [k for k in _models if k[0] == spec]:
        del _models[model_key]


class LocalCaller:
    """Answers calls with the batcher of a local model: the same ``call`` as LiteLLMCaller, with
    no litellm in between (a local model needs no HTTP client, and litellm's import and per-call
    CPU would only slow it down)."""

    def __init__(self, config: Any) -> None:
        self.spec = config.model[len(LOCAL_PREFIX) :]
        _settings[self.spec] = LocalSettings(config.dtype, config.device, config.batch_size)
        params = {k: v for k, v in config.sampling_params().items() if v is not None}
        self.params = GenParams.from_openai(params)
        self.n = int(params.get("n") or 1)

    async def load(self) -> None:
        await batcher_for(self.spec)

    async def call(self, messages: list[Message], timeout: float) -> Reply | Failure:
        batcher = await batcher_for(self.spec)
        try:
            outputs = await batcher.generate(list(messages), self.params, self.n)
        except Exception as exc:  # a failed batch (out of memory ...) may pass on a retry, as a server's 5xx
            return Failure("server_error", f"{type(exc).__name__}: {exc}")
        return Reply(
            completions=[
                Completion(
                    out.text,
                    out.finish_reason,
                    None if out.logprobs is None else [TokenLogprob(t, lp, list(top)) for t, lp, top in out.logprobs],
                )
                for out in outputs
            ],
            prompt_tokens=outputs[0].prompt_tokens if outputs else 0,
            completion_tokens=sum(o.completion_tokens for o in outputs),
        )
