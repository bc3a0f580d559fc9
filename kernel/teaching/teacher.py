"""CallTeacher: a teacher that implements one call; the kernel runs everything around it.

A subclass implements ``complete(call) -> Reply`` (blocking; run in a thread, ``concurrency`` at a
time) or ``async acomplete(call) -> Reply`` (on the engine's event loop), as llm's
``Model.execute`` / ``AsyncModel.execute``. It may return a :class:`Failure` or raise; either way
the engine decides what happens next. Every such teacher gets, without writing them:

- the content-addressed response cache (a rerun or resume asks nothing already answered; repeats
  of one prompt are asked once);
- bounded concurrency, rpm/tpm limits, retries with backoff, timeouts and a circuit breaker
  (:mod:`.engine`);
- the budget (stop *before* ``budget_usd`` could be passed) and token and cost accounting;
- kill -9 safety: an answer is committed to the cache before ``on_result`` hears of it, and a call
  is not made until the answer before it on that worker is stored, so a kill loses at most
  ``concurrency`` paid answers.

``generate`` runs in the calling thread: it answers what the cache already holds, hands the rest
to the engine on the teacher's private event loop (:mod:`.loop`), and delivers each outcome as it
comes back. Failed samples come back as results with ``error`` set; the kernel retries them on the
next resume.
"""

from __future__ import annotations

import asyncio
import queue
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, ClassVar

from stillhouse.kernel.errors import ConfigError, Location
from stillhouse.kernel.interfaces import Estimate, Message, Teacher, TeacherRequest, TeacherResult
from stillhouse.kernel.teaching.cache import ResponseCache, cache_key, normal_base, open_cache
from stillhouse.kernel.teaching.config import CallTeacherConfig, HttpTeacherConfig
from stillhouse.kernel.teaching.delivery import cached_result, deliver, raise_for
from stillhouse.kernel.teaching.engine import Engine, EngineSettings, Job, RunSummary
from stillhouse.kernel.teaching.loop import LoopThread
from stillhouse.kernel.teaching.pricing import Price, estimate_prompt_tokens
from stillhouse.kernel.teaching.ratelimit import RateLimiter
from stillhouse.kernel.teaching.replies import Call, Failure, Reply, classify_exception

_DONE = object()
_POLL_S = 0.25


class CallTeacher(Teacher):
    """A teacher whose subclasses implement only ``complete`` or ``acomplete``."""

    Config = CallTeacherConfig
    config: CallTeacherConfig
    prompt_token_note: ClassVar[str] = "prompt tokens estimated at about 4 characters a token"

    def __init__(self, config: CallTeacherConfig | None = None) -> None:
        super().__init__(config)
        if type(self).complete is CallTeacher.complete and type(self).acomplete is CallTeacher.acomplete:
            raise TypeError(f"{type(self).__name__} must implement complete() or acomplete()")
        self._price: tuple[Price | None] | None = None  # memo of find_price(), None until asked
        self._loop: LoopThread | None = None
        self._shared_loop: LoopThread | None = None
        self._engine: Engine | None = None
        self._threads: ThreadPoolExecutor | None = None

    def share_loop(self, loop: LoopThread) -> None:
        """Run this teacher's engine on ``loop``, which its owner closes (not this teacher). Several
        teachers answering at the same time share one loop: litellm keeps process-wide state (its
        logging worker) bound to one event loop, and fails or stalls when two loops run at once."""
        self._shared_loop = loop

    # -- the one call: implement either ---------------------------------------------------

    def complete(self, call: Call) -> Reply | Failure:
        """One attempt at ``call``, blocking. Runs in a thread; answer within ``call.timeout``."""
        raise NotImplementedError

    async def acomplete(self, call: Call) -> Reply | Failure:
        """One attempt at ``call`` on the engine's event loop (the default runs ``complete`` in a
        thread of a pool as large as ``concurrency``)."""
        assert self._threads is not None
        return await asyncio.get_running_loop().run_in_executor(self._threads, self.complete, call)

    # -- optional hooks -------------------------------------------------------------------

    async def start(self, calls: int) -> None:
        """Open clients, load models: run once on the engine's loop before the first call.
        ``calls`` is how many calls the first generation needs (to size worker pools)."""

    async def stop(self) -> None:
        """Release what ``start`` opened; run on the engine's loop by ``close``."""

    def interrupt(self) -> None:
        """A stop was requested and the calls in flight are abandoned: cut them short if the
        teacher can (a local model stops decoding between two tokens)."""

    def classify(self, exc: Exception) -> Failure:
        """The Failure for an exception ``complete`` raised (by HTTP status and type by default)."""
        return classify_exception(exc)

    def find_price(self) -> Price | None:
        """The per-token price: the configured ``price`` table, else unknown (costs are None)."""
        return Price.configured(self.config.price) if self.config.price is not None else None

    def count_prompt_tokens(self, messages: Sequence[Message]) -> int:
        """Prompt tokens of a call, for the budget, tpm limits and estimates."""
        return estimate_prompt_tokens(messages)

    def endpoint_identity(self) -> Any:
        """What, besides the model name, decides which model answers (part of the cache key): by
        default the normalised ``api_base`` of an :class:`HttpTeacherConfig`, else nothing."""
        return normal_base(self.config.api_base) if isinstance(self.config, HttpTeacherConfig) else None

    def endpoint_description(self) -> str:
        """Where the calls go, for an 'unreachable' error."""
        base = self.config.api_base if isinstance(self.config, HttpTeacherConfig) else None
        return base or f"{self.config.model}'s default endpoint"

    def engine_settings(self, calls: int) -> EngineSettings:
        cfg = self.config
        return EngineSettings(
            concurrency=cfg.concurrency,
            max_retries=cfg.max_retries,
            timeout=cfg.timeout,
            retry_base_delay=cfg.retry_base_delay,
            retry_max_delay=cfg.retry_max_delay,
            max_tokens=cfg.max_tokens,
            samples=cfg.samples,
            budget_usd=cfg.budget_usd,
            unreachable_after=cfg.unreachable_after,
        )

    # -- provided: checks, estimates, the cache key ---------------------------------------

    def check(self) -> None:
        if self.config.budget_usd is not None and self.price() is None:
            raise ConfigError(
                f"budget_usd is set but the price of '{self.config.model}' is unknown, so spending cannot be tracked",
                where=Location(field="teacher.price"),
                hint="add [teacher.price] input_per_mtok = ... and output_per_mtok = ... (USD per million tokens)",
            )

    def price(self) -> Price | None:
        if self._price is None:
            self._price = (self.find_price(),)
        return self._price[0]

    def cache_key(self, request: TeacherRequest) -> str:
        return cache_key(self.config.model, request.messages, self.config.sampling_params(), self.endpoint_identity())

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
        prompt = sum(self.count_prompt_tokens(r.messages) for r in to_call.values())
        completion = len(to_call) * self.config.max_tokens * self.config.samples
        price = self.price()
        note = (
            f"completion tokens are the upper bound max_tokens x samples = {self.config.max_tokens} x "
            f"{self.config.samples} per call; {self.prompt_token_note}; cached or repeated prompts are not "
            "called; retries are not included; "
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

    # -- provided: generation -------------------------------------------------------------

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
                raise_for(summary, budget_usd=self.config.budget_usd, endpoint=self.endpoint_description())
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
                on_result(cached_result(request.sample_id, key, hits[key], cache_hit=True))
            elif key in jobs:
                jobs[key].sample_ids.append(request.sample_id)
            else:
                estimate = self.count_prompt_tokens(request.messages) if count_tokens else 0
                jobs[key] = Job(key, request.messages, [request.sample_id], estimate)
        return list(jobs.values())

    def _run_jobs(
        self,
        jobs: list[Job],
        cache: ResponseCache | None,
        on_result: Callable[[TeacherResult], None],
        should_stop: Callable[[], bool],
    ) -> RunSummary:
        engine, loop = self._ensure_engine(len(jobs))
        inbox: queue.SimpleQueue[Any] = queue.SimpleQueue()
        future = loop.submit(engine.run(jobs, inbox.put))
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
                deliver(self.config.model, outcomes, cache, on_result)
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
        """The engine's stop comes first, so an answer cut short by ``interrupt`` is never recorded."""
        engine.request_stop()
        self.interrupt()

    async def _attempt(self, call: Call) -> Reply | Failure:
        """One attempt through the subclass's call; whatever it raises becomes a Failure."""
        try:
            result = await self.acomplete(call)
        except Exception as exc:
            return self.classify(exc)
        if not isinstance(result, Reply | Failure):
            return Failure("internal", f"{type(self).__name__} answered a {type(result).__name__}, not a Reply")
        return result

    def _ensure_engine(self, calls: int) -> tuple[Engine, LoopThread]:
        """The engine and its loop, started on first use; ``calls`` sizes pools in ``start``."""
        if self._engine is None or self._loop is None:
            settings = self.engine_settings(calls)
            if type(self).acomplete is CallTeacher.acomplete:
                self._threads = ThreadPoolExecutor(settings.concurrency, thread_name_prefix="stillhouse-call")
            self._loop = self._shared_loop or LoopThread()
            try:
                self._loop.run(self.start(calls))
            except BaseException:
                self.close()  # a half-started teacher releases what it opened; the next call starts afresh
                raise
            limiter = RateLimiter(self.config.rpm, self.config.tpm)
            self._engine = Engine(self._attempt, settings, self.price(), limiter)
        return self._engine, self._loop

    def close(self) -> None:
        if self._loop is not None:
            try:
                self._loop.run(self.stop(), timeout=15)
            except (TimeoutError, RuntimeError):
                pass
            if self._loop is not self._shared_loop:
                self._loop.close()
        if self._threads is not None:
            self._threads.shutdown(wait=False, cancel_futures=True)
        self._loop = self._engine = self._threads = None
