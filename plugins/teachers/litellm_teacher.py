"""The ``litellm`` teacher: any model litellm can call, or a local ``hf/`` model.

It implements the one call of a :class:`~stillhouse.kernel.teaching.CallTeacher` (one litellm
attempt, in this process or a worker process); the kernel's engine adds the cache, retries,
limits, budget and accounting. What is litellm's own: prices and tokenizers from its map, a router
over ``deployments`` (part of the cache key), and local models that load before the first call
and stop decoding when a run stops.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from stillhouse.kernel.errors import ConfigError, Location
from stillhouse.kernel.interfaces import Message, TeacherRequest, TeacherResult
from stillhouse.kernel.teaching import Call, CallTeacher, Failure, Price, Reply
from stillhouse.kernel.teaching.cache import normal_base
from stillhouse.kernel.teaching.engine import EngineSettings
from stillhouse.plugins.teachers.calls import resolve_key
from stillhouse.plugins.teachers.config import LOCAL_PREFIX, LiteLLMTeacherConfig
from stillhouse.plugins.teachers.pricing import count_prompt_tokens, find_price

LOCAL_TIMEOUT_S = 24 * 3600.0


class LiteLLMTeacher(CallTeacher):
    name = "litellm"
    description = "Any litellm model (OpenAI, Azure, Anthropic, vLLM, Ollama ...) or a local hf/ transformers model."
    Config = LiteLLMTeacherConfig
    config: LiteLLMTeacherConfig
    prompt_token_note = (
        "prompt tokens counted with litellm's tokenizer for the model (about 4 characters a token when it has none)"
    )

    def __init__(self, config: LiteLLMTeacherConfig | None = None) -> None:
        super().__init__(config)
        self._caller: Any = None  # a LiteLLMCaller, or a WorkerPool with the same call()

    # -- the one call ---------------------------------------------------------------------

    async def acomplete(self, call: Call) -> Reply | Failure:
        result: Reply | Failure = await self._caller.call(call.messages, call.timeout)
        return result

    async def start(self, calls: int) -> None:
        workers = self.config.worker_count(calls)
        if workers > 1:
            from stillhouse.plugins.teachers.workers import WorkerPool

            pool = WorkerPool(self.config, workers)
            await pool.start()
            self._caller = pool
            return
        if self.config.is_local:
            from stillhouse.plugins.teachers.local import LocalCaller

            self._caller = LocalCaller(self.config)
            await self._caller.load()  # now: not inside a call's latency
            return
        from stillhouse.plugins.teachers.calls import LiteLLMCaller

        self._caller = LiteLLMCaller(self.config)

    async def stop(self) -> None:
        caller, self._caller = self._caller, None
        if hasattr(caller, "aclose"):
            await caller.aclose()
        if self.config.is_local and caller is not None:
            from stillhouse.plugins.teachers.local import release

            release(self._local_spec)
            _clear_local_stop()  # the stop took effect; later generation in this process runs normally

    def interrupt(self) -> None:
        if self.config.is_local:  # decoding stops between two tokens
            from stillhouse.plugins.teachers.batching import request_stop

            request_stop()

    def generate(
        self,
        requests: Sequence[TeacherRequest],
        on_result: Callable[[TeacherResult], None],
        *,
        cache_dir: Path | None,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> None:
        if self.config.is_local:
            _clear_local_stop()  # a stop of an earlier stage or run in this process is over
        super().generate(requests, on_result, cache_dir=cache_dir, should_stop=should_stop)

    def engine_settings(self, calls: int) -> EngineSettings:
        settings = super().engine_settings(calls)
        if not self.config.is_local:
            return settings
        return replace(
            settings,
            # A local model answers in batches: keep a second full batch queued while one runs,
            # or the batcher alternates full and nearly empty batches.
            concurrency=max(self.config.concurrency, 2 * self.config.batch_size),
            # A local request spends most of its time queued behind other batches in this
            # process; a network timeout would only retry (and so repeat) work already queued.
            timeout=LOCAL_TIMEOUT_S,
            unreachable_after=0,  # a local model has no connection to lose
            stop_grace_s=0.0,  # a stopped local model cuts its answers short: none may be kept
        )

    # -- what litellm knows ---------------------------------------------------------------

    def check(self) -> None:
        cfg = self.config
        resolve_key(cfg.api_key_env, "teacher.api_key_env")
        for i, dep in enumerate(cfg.deployments):
            resolve_key(dep.api_key_env, f"teacher.deployments[{i}].api_key_env")
        if cfg.is_local:
            _check_local_spec(self._local_spec)
        super().check()

    def find_price(self) -> Price | None:
        cfg = self.config
        if cfg.deployments:
            return find_price(cfg.deployments[0].model, cfg.deployments[0].api_base, cfg.price)
        return find_price(cfg.model, cfg.api_base, cfg.price)

    def count_prompt_tokens(self, messages: Sequence[Message]) -> int:
        model = self.config.deployments[0].model if self.config.deployments else self.config.model
        return count_prompt_tokens(model, messages)

    def endpoint_identity(self) -> Any:
        """The api_base, or every deployment (model, api_base) a router may send a call to."""
        if self.config.deployments:
            return sorted([d.model, normal_base(d.api_base) or ""] for d in self.config.deployments)
        return super().endpoint_identity()

    def endpoint_description(self) -> str:
        bases = [d.api_base or f"{d.model}'s default endpoint" for d in self.config.deployments]
        return ", ".join(bases) if bases else super().endpoint_description()

    @property
    def _local_spec(self) -> str:
        return self.config.model[len(LOCAL_PREFIX) :]

    def describe(self) -> dict[str, Any]:
        cfg = self.config
        price = self.price() if cfg.price or cfg.is_local else None
        return {
            "model": cfg.model,
            "parameters": cfg.parameters,
            "backend": self.name,
            "local": cfg.is_local,
            "deployments": [d.model for d in cfg.deployments],
            "price_source": price.source if price else None,
        }


def _clear_local_stop() -> None:
    from stillhouse.plugins.teachers.batching import clear_stop

    clear_stop()


def _check_local_spec(spec: str) -> None:
    """A local path that does not exist is a config error now, not a load error mid-run.
    Hub ids (``org/name``) are left to the loader: they may sit in the Hugging Face cache."""
    from stillhouse.plugins.hf_models import resolve_spec

    path = Path(resolve_spec(spec)).expanduser()
    looks_like_path = spec.startswith(("/", ".", "~")) or spec.endswith(".gguf") or path.exists()
    if looks_like_path and not path.exists():
        raise ConfigError(
            f"local teacher model not found: {spec}",
            where=Location(field="teacher.model"),
            hint='use "hf/<folder>", "hf/<folder>/<file>.gguf" or "hf/<hub id in the local cache>"',
        )


__all__ = ["LiteLLMTeacher"]
