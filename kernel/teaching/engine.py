"""The async generation engine: bounded concurrency, rate limits, retries, timeouts and a budget.

It runs on one event loop (see :mod:`.loop`) and answers :class:`Job` s — one per distinct prompt —
through a caller that makes single attempts (a teacher's ``acomplete``, which may hand them on to
worker processes). Every job
ends in exactly one :class:`Outcome` handed to ``emit``, except the jobs never started because the
budget or a stop request came first. A stop request also abandons the calls in flight (their
answers are not recorded; a resume asks them again), so a stop takes effect at once.

Policy:

- ``concurrency`` coroutines pull jobs from one queue, so memory stays flat for any input size;
- before each attempt the rpm/tpm limiter admits it, and with a budget the attempt's worst-case
  cost (estimated prompt tokens + ``max_tokens`` for each of the ``n`` completions) is reserved:
  the run stops *before* the spend could pass ``budget_usd``;
- 429, 5xx, timeouts, connection errors and malformed responses are retried up to
  ``max_retries`` times after an exponential backoff with jitter (at least the server's
  ``Retry-After``); other errors are recorded at once; an authentication error stops the run;
- ``unreachable_after`` connection failures in a row (no success between them, whichever job made
  them) open a circuit breaker: the teacher is down, so the run stops at once with what it has
  rather than retrying every remaining prompt one by one into a dead endpoint;
- a response whose completions are all empty is a failure (``empty_completion``), not retried:
  the same request would most likely come back empty again, and be paid for again.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from stillhouse.kernel.interfaces import Message
from stillhouse.kernel.teaching.pricing import Price
from stillhouse.kernel.teaching.ratelimit import RateLimiter
from stillhouse.kernel.teaching.replies import Call, Failure, Reply

CallFn = Callable[[Call], Awaitable[Reply | Failure]]

# How much a provider's prompt-token count may exceed our estimate before the budget could be
# overrun; the reservation covers it.
PROMPT_ESTIMATE_MARGIN = 1.2
# The caller gets ``timeout`` itself; this outer guard only catches a caller that hangs anyway.
TIMEOUT_GRACE_S = 5.0


@dataclass
class Job:
    """One distinct prompt (cache key) and the samples that asked it."""

    key: str
    messages: list[Message]
    sample_ids: list[str]
    prompt_tokens_estimate: int


@dataclass
class Outcome:
    job: Job
    reply: Reply | None
    error: str | None
    latency_ms: float
    attempts: int
    cost_usd: float | None = 0.0
    # Set (from any thread, through ``mark_delivered``) once the caller has stored the outcome. The
    # worker that produced it waits for that before its next call, so a kill loses at most
    # ``concurrency`` paid answers: those in flight or being written, never a backlog.
    delivered: asyncio.Future[None] | None = field(default=None, repr=False, compare=False)

    def mark_delivered(self) -> None:
        future = self.delivered
        if future is not None and not future.get_loop().is_closed():
            future.get_loop().call_soon_threadsafe(_resolve, future)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


@dataclass
class EngineSettings:
    concurrency: int
    max_retries: int
    timeout: float
    retry_base_delay: float
    retry_max_delay: float
    max_tokens: int
    samples: int
    budget_usd: float | None = None
    unreachable_after: int = 0  # 0: no circuit breaker
    stop_grace_s: float = 2.0  # after a stop request, how long calls in flight may still finish


@dataclass
class RunSummary:
    started: int = 0
    unsent: int = 0
    attempts: int = 0
    retries: int = 0
    spent_usd: float = 0.0
    budget_hit: bool = False
    stopped: bool = False
    fatal: Failure | None = None
    unsent_keys: list[str] = field(default_factory=list)


class Engine:
    """Answers jobs on the running loop; ``request_stop`` may be called from any thread."""

    def __init__(self, call: CallFn, settings: EngineSettings, price: Price | None, limiter: RateLimiter) -> None:
        self.call = call
        self.settings = settings
        self.price = price
        self.limiter = limiter
        self.spent = 0.0  # across runs of this engine: the budget is per teacher, not per split
        self._reserved = 0.0
        self._stop: asyncio.Event | None = None
        self._settled: asyncio.Condition | None = None  # notified whenever a reservation is released
        self._loop: asyncio.AbstractEventLoop | None = None
        self._connection_failures = 0  # in a row, across all jobs; any answer resets it

    def request_stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)

    async def run(self, jobs: list[Job], emit: Callable[[Outcome], None]) -> RunSummary:
        """Answer ``jobs``, handing each outcome to ``emit`` (any thread may then store it); the
        caller must call ``outcome.mark_delivered()`` once it has, or that worker stops there."""
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self._settled = asyncio.Condition()
        summary = RunSummary()
        queue = deque(jobs)

        async def worker() -> None:
            while queue and not self._halted(summary):
                job = queue.popleft()
                try:
                    outcome = await self._answer(job, summary)
                except asyncio.CancelledError:  # stopped mid-call: the job stays unanswered
                    queue.appendleft(job)
                    raise
                if outcome is None or (self._stop_requested() and self.settings.stop_grace_s <= 0):
                    # Without a grace period (a local model) a result that lands after the stop
                    # request may have been cut short by it: not recorded; resume asks again.
                    queue.appendleft(job)
                    return
                outcome.delivered = asyncio.get_running_loop().create_future()
                emit(outcome)
                await outcome.delivered

        workers = [asyncio.ensure_future(worker()) for _ in range(min(self.settings.concurrency, len(jobs)))]
        everything: asyncio.Future[Any] = asyncio.gather(*workers)
        stopper: asyncio.Future[Any] = asyncio.ensure_future(self._stop.wait())
        try:
            await asyncio.wait([everything, stopper], return_when=asyncio.FIRST_COMPLETED)
            if not everything.done() and self.settings.stop_grace_s > 0:
                # Calls about to come back are kept (not paid for twice); the rest are abandoned.
                await asyncio.wait([everything], timeout=self.settings.stop_grace_s)
            if not everything.done():  # a stop request: abandon the calls still in flight
                everything.cancel()
                await asyncio.gather(*workers, return_exceptions=True)
            elif not everything.cancelled():
                everything.result()  # re-raise what a worker raised (emit failed)
        finally:
            stopper.cancel()
        summary.unsent = len(queue)
        summary.unsent_keys = [job.key for job in queue]
        summary.stopped = self._stop.is_set()
        summary.spent_usd = self.spent
        return summary

    def _stop_requested(self) -> bool:
        return self._stop is not None and self._stop.is_set()

    def _halted(self, summary: RunSummary) -> bool:
        return summary.budget_hit or summary.fatal is not None or (self._stop is not None and self._stop.is_set())

    def _worst_case_cost(self, job: Job) -> float:
        if self.price is None:
            return 0.0
        prompt = math.ceil(job.prompt_tokens_estimate * PROMPT_ESTIMATE_MARGIN)
        return self.price.cost(prompt, self.settings.max_tokens * self.settings.samples)

    def _cost(self, reply: Reply) -> float | None:
        """Configured or local prices first; then the provider's own figure for the response (it
        knows tiered and cached-token prices); then the per-token price map."""
        if self.price is not None and self.price.source in ("config", "local"):
            return self.price.cost(reply.prompt_tokens, reply.completion_tokens)
        if reply.provider_cost is not None:
            return float(reply.provider_cost)
        return self.price.cost(reply.prompt_tokens, reply.completion_tokens) if self.price is not None else None

    async def _answer(self, job: Job, summary: RunSummary) -> Outcome | None:
        """Attempt ``job`` until it succeeds or may not be retried; None if it never started."""
        s = self.settings
        attempts = 0
        token_estimate = job.prompt_tokens_estimate + s.max_tokens * s.samples
        while True:
            reserve = self._worst_case_cost(job) if s.budget_usd is not None else 0.0
            if not await self._admit(reserve, summary):
                return None
            if attempts == 0:
                summary.started += 1
            self._reserved += reserve
            try:
                await self.limiter.acquire(token_estimate)
                attempts += 1
                summary.attempts += 1
                started = time.perf_counter()
                try:
                    async with asyncio.timeout(s.timeout + TIMEOUT_GRACE_S):  # unlike wait_for, no extra task
                        result = await self.call(Call(job.messages, s.timeout))
                except TimeoutError:
                    result = Failure("timeout", f"no answer within {s.timeout:g} s")
                latency_ms = (time.perf_counter() - started) * 1000
            finally:
                self._reserved -= reserve
                if self._settled is not None:
                    async with self._settled:
                        self._settled.notify_all()
            if isinstance(result, Reply):
                self._connection_failures = 0
                self.limiter.settle(token_estimate, result.prompt_tokens + result.completion_tokens)
                cost = self._cost(result)
                self.spent += cost or 0.0
                if not any(c.text.strip() for c in result.completions):
                    reasons = ",".join(sorted({str(c.finish_reason) for c in result.completions})) or "no choices"
                    error = f"empty_completion: the teacher returned no text (finish_reason={reasons})"
                    return Outcome(job, result, error, latency_ms, attempts, cost)
                return Outcome(job, result, None, latency_ms, attempts, cost)
            if result.fatal:
                summary.fatal = result
            elif self._trips_breaker(result) and summary.fatal is None:
                summary.fatal = Failure(
                    "unreachable",
                    f"{self._connection_failures} connection failures in a row; last: {result.message}",
                )
            elif result.retryable and attempts <= s.max_retries and not self._halted(summary):
                summary.retries += 1
                if await self._backoff(attempts, result.retry_after):
                    continue
            return Outcome(
                job, None, f"{result.kind}: {result.message} (after {attempts} attempt(s))", latency_ms, attempts
            )

    def _trips_breaker(self, result: Failure) -> bool:
        if result.kind != "connection":
            return False
        self._connection_failures += 1
        limit = self.settings.unreachable_after
        return limit > 0 and self._connection_failures >= limit

    async def _admit(self, reserve: float, summary: RunSummary) -> bool:
        """Whether a call whose worst case costs ``reserve`` fits the budget. While calls are in
        flight their real costs are not known yet: wait for them rather than give up early."""
        budget = self.settings.budget_usd
        if budget is None:
            return True
        assert self._settled is not None
        async with self._settled:
            while self.spent + self._reserved + reserve > budget:
                if self._reserved <= 0 or self._halted(summary):
                    summary.budget_hit = True
                    return False
                await self._settled.wait()
        return True

    async def _backoff(self, attempt: int, retry_after: float | None) -> bool:
        """Wait before retry number ``attempt``; False if a stop was requested meanwhile."""
        s = self.settings
        delay = min(s.retry_max_delay, s.retry_base_delay * 2 ** (attempt - 1))
        delay = random.uniform(delay / 2, delay)  # jitter: retries of a burst spread out
        if retry_after is not None:
            delay = max(delay, min(retry_after, s.retry_max_delay))
        assert self._stop is not None
        try:
            await asyncio.wait_for(self._stop.wait(), delay)
        except TimeoutError:
            return True
        return False
