"""The ``litellm`` teacher: any model litellm can call, or a local ``hf/`` model, behind one engine
and one response cache.

``generate`` runs in the calling thread: it answers what the cache already holds, hands the rest to
the engine on the teacher's private event loop, and as each outcome comes back it first stores a
success in the cache (so a crash after that point never pays for it again) and then calls
``on_result``. Failed samples come back as results with ``error`` set; the kernel retries them on
the next resume.
"""

from __future__ import annotations

import concurrent.futures
import queue
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from stillhouse.kernel.errors import BudgetExceededError, ConfigError, Location, TeacherError
from stillhouse.kernel.interfaces import Estimate, Teacher, TeacherRequest, TeacherResult
from stillhouse.plugins.teachers.cache import CachedResponse, ResponseCache, cache_key, open_cache
from stillhouse.plugins.teachers.calls import resolve_key
from stillhouse.plugins.teachers.config import LOCAL_PREFIX, LiteLLMTeacherConfig
from stillhouse.plugins.teachers.engine import Engine, EngineSettings, Job, Outcome, RunSummary
from stillhouse.plugins.teachers.pricing import Price, count_prompt_tokens, find_price
from stillhouse.plugins.teachers.ratelimit import RateLimiter

LOCAL_TIMEOUT_S = 24 * 3600.0
_DONE = object()
_POLL_S = 0.25


class LiteLLMTeacher(Teacher):
    name = "litellm"
    description = "Any litellm model (OpenAI, Azure, Anthropic, vLLM, Ollama ...) or a local hf/ transformers model."
    Config = LiteLLMTeacherConfig

    def __init__(self, config: LiteLLMTeacherConfig | None = None) -> None:
        super().__init__(config)
        self.config: LiteLLMTeacherConfig = self.config  # narrowed for type checkers
        self._price: Price | None = None
        self._price_known = False
        self._loop: Any = None
        self._engine: Engine | None = None
        self._caller: Any = None

    # -- checks and estimates --------------------------------------------------------------

    def check(self) -> None:
        cfg = self.config
        resolve_key(cfg.api_key_env, "teacher.api_key_env")
        for i, dep in enumerate(cfg.deployments):
            resolve_key(dep.api_key_env, f"teacher.deployments[{i}].api_key_env")
        if cfg.is_local:
            _check_local_spec(cfg.model[len(LOCAL_PREFIX) :])
        if cfg.budget_usd is not None and self.price() is None:
            raise ConfigError(
                f"budget_usd is set but the price of '{cfg.model}' is unknown, so spending cannot be tracked",
                where=Location(field="teacher.price"),
                hint="add [teacher.price] input_per_mtok = ... and output_per_mtok = ... (USD per million tokens)",
            )

    def price(self) -> Price | None:
        if not self._price_known:
            cfg = self.config
            model, api_base = (
                (cfg.deployments[0].model, cfg.deployments[0].api_base)
                if cfg.deployments
                else (cfg.model, cfg.api_base)
            )
            self._price = find_price(model, api_base, cfg.price)
            self._price_known = True
        return self._price

    def cache_key(self, request: TeacherRequest) -> str:
        return cache_key(self.config.model, request.messages, self.config.sampling_params(), self._endpoint_identity())

    def _endpoint_identity(self) -> Any:
        """What, besides the model name, decides which model answers: the api_base, or every
        deployment (model, api_base) a router may send a call to."""
        cfg = self.config
        if cfg.deployments:
            return sorted([d.model, _normal_base(d.api_base) or ""] for d in cfg.deployments)
        return _normal_base(cfg.api_base)

    def estimate(self, requests: Sequence[TeacherRequest], cache_dir: Path | None) -> Estimate:
        keys = [self.cache_key(r) for r in requests]
        cache = open_cache(cache_dir)
        try:
            cached_keys = cache.contains(keys) if cache else set()
        finally:
            if cache:
                cache.close()
        to_call: dict[str, TeacherRequest] = {}
        for request, key in zip(requests, keys, strict=True):
            if key not in cached_keys:
                to_call.setdefault(key, request)
        prompt = sum(count_prompt_tokens(self._token_model(), r.messages) for r in to_call.values())
        completion = len(to_call) * self.config.max_tokens * self.config.samples
        price = self.price()
        note = (
            f"completion tokens are the upper bound max_tokens x samples = {self.config.max_tokens} x "
            f"{self.config.samples} per call; prompt tokens counted with litellm's tokenizer for the model "
            "(about 4 characters a token when it has none); cached or repeated prompts are not called; "
            "retries are not included; "
            + (f"prices from {price.source}" if price else "price unknown: set [teacher.price] to get a cost")
        )
        return Estimate(
            calls=len(to_call),
            cached=sum(1 for k in keys if k in cached_keys),
            prompt_tokens=prompt,
            completion_tokens=completion,
            cost_usd=price.cost(prompt, completion) if price else None,
            note=note,
        )

    def _token_model(self) -> str:
        return self.config.deployments[0].model if self.config.deployments else self.config.model

    # -- generation -----------------------------------------------------------------------

    def generate(
        self,
        requests: Sequence[TeacherRequest],
        on_result: Callable[[TeacherResult], None],
        *,
        cache_dir: Path | None,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> None:
        self.check()
        cache = open_cache(cache_dir)
        try:
            jobs = self._answer_from_cache(requests, cache, on_result)
            if jobs and not should_stop():
                summary = self._run_jobs(jobs, cache, on_result, should_stop)
                self._raise_for(summary)
        finally:
            if cache:
                cache.close()

    def _answer_from_cache(
        self,
        requests: Sequence[TeacherRequest],
        cache: ResponseCache | None,
        on_result: Callable[[TeacherResult], None],
    ) -> list[Job]:
        """Deliver cached answers; group the rest into one job per distinct prompt."""
        keyed = [(r, self.cache_key(r)) for r in requests]
        hits = cache.get_many(k for _, k in keyed) if cache else {}
        count_tokens = self.config.budget_usd is not None or self.config.tpm is not None
        jobs: dict[str, Job] = {}
        for request, key in keyed:
            if key in hits:
                on_result(self._result(request.sample_id, key, hits[key], cache_hit=True))
            elif key in jobs:
                jobs[key].sample_ids.append(request.sample_id)
            else:
                estimate = count_prompt_tokens(self._token_model(), request.messages) if count_tokens else 0
                jobs[key] = Job(key, request.messages, [request.sample_id], estimate)
        return list(jobs.values())

    def _run_jobs(
        self,
        jobs: list[Job],
        cache: ResponseCache | None,
        on_result: Callable[[TeacherResult], None],
        should_stop: Callable[[], bool],
    ) -> RunSummary:
        engine = self._ensure_engine(len(jobs))
        if self.config.is_local:
            from stillhouse.plugins.teachers.batching import clear_stop

            clear_stop()  # a stop of an earlier stage or run in this process is over
        inbox: queue.SimpleQueue[Any] = queue.SimpleQueue()
        future = self._loop.submit(engine.run(jobs, inbox.put))
        future.add_done_callback(lambda _: inbox.put(_DONE))
        try:
            finished = False
            while not finished:
                try:
                    batch = [inbox.get(timeout=_POLL_S)]
                except queue.Empty:
                    batch = []
                while batch:  # whatever else arrived meanwhile: one cache transaction for all
                    try:
                        batch.append(inbox.get_nowait())
                    except queue.Empty:
                        break
                finished = _DONE in batch
                outcomes = [item for item in batch if item is not _DONE]
                self._deliver(outcomes, cache, on_result)
                for outcome in outcomes:  # stored and reported: the worker may make its next call
                    outcome.mark_delivered()
                if should_stop():
                    self._stop_now(engine)
        except BaseException:
            # on_result failed or the user interrupted: stop at once; in-flight answers are lost.
            self._stop_now(engine)
            future.cancel()
            raise
        return future.result()

    def _stop_now(self, engine: Engine) -> None:
        """Abandon the calls in flight; a local model also stops decoding between two tokens. The
        engine's stop comes first, so a cut-short local answer is never recorded."""
        engine.request_stop()
        if self.config.is_local:
            from stillhouse.plugins.teachers.batching import request_stop

            request_stop()

    def _deliver(
        self, outcomes: list[Outcome], cache: ResponseCache | None, on_result: Callable[[TeacherResult], None]
    ) -> None:
        """Store the successes (durable before anyone hears of them), then report every outcome."""
        answered: dict[int, CachedResponse] = {}
        for o in outcomes:
            if o.error is None and o.reply is not None:
                r = o.reply
                answered[id(o)] = CachedResponse(
                    self.config.model, r.completions, r.prompt_tokens, r.completion_tokens, o.cost_usd, o.latency_ms
                )
        if cache is not None:
            cache.put_many([(o.job.key, answered[id(o)]) for o in outcomes if id(o) in answered])
        for outcome in outcomes:
            response = answered.get(id(outcome))
            job = outcome.job
            if response is None:
                for sample_id in job.sample_ids:
                    on_result(self._failure(outcome, sample_id))
                continue
            for i, sample_id in enumerate(job.sample_ids):
                # The first asker paid; repeats of the same prompt in this batch are answered for free.
                cost = outcome.cost_usd if i == 0 else 0.0
                on_result(self._result(sample_id, job.key, response, cache_hit=i > 0, cost=cost))

    def _failure(self, outcome: Outcome, sample_id: str) -> TeacherResult:
        reply = outcome.reply  # an empty completion still used (and may have cost) tokens
        return TeacherResult(
            sample_id=sample_id,
            model=self.config.model,
            cache_key=outcome.job.key,
            prompt_tokens=reply.prompt_tokens if reply else 0,
            completion_tokens=reply.completion_tokens if reply else 0,
            cost_usd=outcome.cost_usd if sample_id == outcome.job.sample_ids[0] else 0.0,
            latency_ms=outcome.latency_ms,
            error=outcome.error,
        )

    def _result(
        self, sample_id: str, key: str, response: CachedResponse, *, cache_hit: bool, cost: float | None = 0.0
    ) -> TeacherResult:
        return TeacherResult(
            sample_id=sample_id,
            model=self.config.model,
            completions=list(response.completions),
            cache_key=key,
            cache_hit=cache_hit,
            prompt_tokens=response.prompt_tokens,
            completion_tokens=response.completion_tokens,
            cost_usd=0.0 if cache_hit else cost,
            latency_ms=response.latency_ms,
        )

    def _raise_for(self, summary: RunSummary) -> None:
        if summary.fatal is not None and summary.fatal.kind == "auth":
            raise TeacherError(
                f"the teacher refused the credentials: {summary.fatal.message}",
                where=Location(field="teacher.api_key_env"),
                hint="check that the environment variable named by teacher.api_key_env holds a valid key",
            )
        if summary.fatal is not None and summary.fatal.kind == "unreachable":
            raise TeacherError(
                f"teacher unreachable at {self._endpoint()}: {summary.fatal.message}",
                where=Location(field="teacher.api_base"),
                hint="start or fix the teacher's server (or api_base), then `still run --resume RUN_ID`: "
                "answers so far are kept and only the unanswered prompts are asked",
            )
        if summary.fatal is not None:
            raise TeacherError(f"the teacher cannot answer: {summary.fatal.message}")
        if summary.budget_hit:
            budget = self.config.budget_usd or 0.0
            raise BudgetExceededError(
                f"stopped before exceeding budget_usd = {budget:g}: spent ${summary.spent_usd:.4f}; "
                f"{summary.unsent} prompt(s) not sent",
                where=Location(field="teacher.budget_usd"),
                hint="raise teacher.budget_usd and resume the run; answers so far are kept",
            )

    def _endpoint(self) -> str:
        cfg = self.config
        bases = [d.api_base or f"{d.model}'s default endpoint" for d in cfg.deployments]
        return ", ".join(bases) if bases else (cfg.api_base or f"{cfg.model}'s default endpoint")

    # -- engine lifecycle -----------------------------------------------------------------

    def _ensure_engine(self, calls: int) -> Engine:
        """The engine, started on first use; ``calls`` sizes the worker pool when workers = "auto"."""
        if self._engine is not None:
            return self._engine
        from stillhouse.plugins.teachers.loop import LoopThread

        cfg = self.config
        self._loop = LoopThread()
        self._caller = self._loop.run(self._make_caller(cfg.worker_count(calls)))
        settings = EngineSettings(
            # A local model answers in batches: keep a second full batch queued while one runs,
            # or the batcher alternates full and nearly empty batches.
            concurrency=max(cfg.concurrency, 2 * cfg.batch_size) if cfg.is_local else cfg.concurrency,
            max_retries=cfg.max_retries,
            # A local hf/ request spends most of its time queued behind other batches in this
            # process; a network timeout would only retry (and so repeat) work already queued.
            timeout=LOCAL_TIMEOUT_S if cfg.is_local else cfg.timeout,
            retry_base_delay=cfg.retry_base_delay,
            retry_max_delay=cfg.retry_max_delay,
            max_tokens=cfg.max_tokens,
            samples=cfg.samples,
            budget_usd=cfg.budget_usd,
            # a local model has no connection to lose
            unreachable_after=0 if cfg.is_local else cfg.unreachable_after,
            # a stopped local model cuts its answers short: none may be kept
            stop_grace_s=0.0 if cfg.is_local else 2.0,
        )
        self._engine = Engine(self._caller.call, settings, self.price(), RateLimiter(cfg.rpm, cfg.tpm))
        return self._engine

    async def _make_caller(self, workers: int) -> Any:
        if workers > 1:
            from stillhouse.plugins.teachers.workers import WorkerPool

            pool = WorkerPool(self.config, workers)
            await pool.start()
            return pool
        from stillhouse.plugins.teachers.calls import LiteLLMCaller

        caller = LiteLLMCaller(self.config)
        if self.config.is_local:
            from stillhouse.plugins.teachers.local import batcher_for

            await batcher_for(self.config.model[len(LOCAL_PREFIX) :])  # load now: not inside a call's latency
        return caller

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

    def close(self) -> None:
        if self._caller is not None and hasattr(self._caller, "aclose") and self._loop is not None:
            try:
                self._loop.run(self._caller.aclose(), timeout=15)
            except (concurrent.futures.TimeoutError, RuntimeError):
                pass
        if self._loop is not None:
            self._loop.close()
        if self.config.is_local and self._caller is not None:
            from stillhouse.plugins.teachers.batching import clear_stop
            from stillhouse.plugins.teachers.local import release

            release(self.config.model[len(LOCAL_PREFIX) :])
            clear_stop()  # the stop took effect; later generation in this process runs normally
        self._loop = self._engine = self._caller = None


def _normal_base(api_base: str | None) -> str | None:
    """``HTTP://Host:8000/v1/`` and ``http://host:8000/v1`` are one endpoint."""
    if not api_base:
        return None
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(api_base.strip())
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), parts.path.rstrip("/"), parts.query, ""))


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
