"""Local ``hf/`` teachers: a transformers model in this process, as a litellm custom provider.

``model = "hf/<hub id | folder | folder/file.gguf>"`` goes through ``litellm.acompletion`` like any
API model — so the engine's concurrency, retries, cache and accounting serve it unchanged — and
litellm hands the call to :class:`LocalHFProvider`, which loads the model once and answers
concurrent calls in batches (:mod:`.batching`). Local calls cost nothing.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass
from typing import Any

from stillhouse.plugins.teachers.batching import BatchingGenerator, GenParams
from stillhouse.plugins.teachers.config import LOCAL_PREFIX
from stillhouse.plugins.teachers.pricing import import_litellm

PROVIDER = LOCAL_PREFIX.rstrip("/")


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


def _provider_class() -> type:
    litellm: Any = import_litellm()
    from litellm.types.utils import ChatCompletionTokenLogprob, ChoiceLogprobs, Choices, Message, TopLogprob, Usage

    class LocalHFProvider(litellm.CustomLLM):
        """litellm's handler for ``hf/`` models."""

        async def acompletion(
            self, model: str, messages: list, model_response: Any, optional_params: dict, **_: Any
        ) -> Any:
            batcher = await batcher_for(model)
            n = int(optional_params.get("n") or 1)
            outputs = await batcher.generate(list(messages), GenParams.from_openai(optional_params), n)
            choices = []
            for index, out in enumerate(outputs):
                logprobs = None
                if out.logprobs is not None:
                    logprobs = ChoiceLogprobs(
                        content=[
                            ChatCompletionTokenLogprob(
                                token=tok,
                                logprob=lp,
                                bytes=list(tok.encode()),
                                top_logprobs=[TopLogprob(token=t, logprob=v, bytes=list(t.encode())) for t, v in top],
                            )
                            for tok, lp, top in out.logprobs
                        ]
                    )
                choice = Choices(
                    index=index, message=Message(content=out.text, role="assistant"), finish_reason=out.finish_reason
                )
                if logprobs is not None:
                    choice.logprobs = logprobs
                choices.append(choice)
            model_response.choices = choices
            model_response.model = f"{PROVIDER}/{model}"
            prompt_tokens = outputs[0].prompt_tokens if outputs else 0
            completion_tokens = sum(o.completion_tokens for o in outputs)
            model_response.usage = Usage(
                prompt_tokens=prompt_tokens,
                completion_tokens=completion_tokens,
                total_tokens=prompt_tokens + completion_tokens,
            )
            return model_response

        def completion(self, *args: Any, **kwargs: Any) -> Any:
            # The synchronous litellm.completion path: run the async one on a private loop.
            return asyncio.run(self.acompletion(*args, **kwargs))

    return LocalHFProvider


def register_local_provider(config: Any = None) -> None:
    """Make ``hf/`` models callable through litellm in this process; record the config's
    dtype/device/batch_size for its model."""
    litellm: Any = import_litellm()
    if config is not None:
        spec = config.model[len(LOCAL_PREFIX) :]
        _settings[spec] = LocalSettings(config.dtype, config.device, config.batch_size)
    if not any(item.get("provider") == PROVIDER for item in litellm.custom_provider_map):
        litellm.custom_provider_map = [
            *litellm.custom_provider_map,
            {"provider": PROVIDER, "custom_handler": _provider_class()()},
        ]
