"""From engine outcomes and cache hits to the kernel's TeacherResults, and from a run's summary to
the error that ends it.

The order is what makes a kill cheap: a success is committed to the cache before anyone hears of
it, so a crash after that point never pays for it again.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from stillhouse.kernel.errors import BudgetExceededError, Location, TeacherError
from stillhouse.kernel.interfaces import TeacherResult
from stillhouse.kernel.teaching.cache import CachedResponse, ResponseCache
from stillhouse.kernel.teaching.engine import Outcome, RunSummary


def cached_result(
    sample_id: str, key: str, response: CachedResponse, *, cache_hit: bool, cost: float | None = 0.0
) -> TeacherResult:
    """A result from a stored response; a cache hit costs nothing this time."""
    return TeacherResult(
        sample_id=sample_id,
        model=response.model,
        completions=list(response.completions),
        cache_key=key,
        cache_hit=cache_hit,
        prompt_tokens=response.prompt_tokens,
        completion_tokens=response.completion_tokens,
        cost_usd=0.0 if cache_hit else cost,
        latency_ms=response.latency_ms,
    )


def failed_result(model: str, outcome: Outcome, sample_id: str) -> TeacherResult:
    reply = outcome.reply  # an empty completion still used (and may have cost) tokens
    return TeacherResult(
        sample_id=sample_id,
        model=model,
        cache_key=outcome.job.key,
        prompt_tokens=reply.prompt_tokens if reply else 0,
        completion_tokens=reply.completion_tokens if reply else 0,
        cost_usd=outcome.cost_usd if sample_id == outcome.job.sample_ids[0] else 0.0,
        latency_ms=outcome.latency_ms,
        error=outcome.error,
    )


def deliver(
    model: str,
    outcomes: Sequence[Outcome],
    cache: ResponseCache | None,
    on_result: Callable[[TeacherResult], None],
) -> None:
    """Store the successes (durable before anyone hears of them), then report every outcome."""
    answered: dict[int, CachedResponse] = {}
    for o in outcomes:
        if o.error is None and o.reply is not None:
            r = o.reply
            answered[id(o)] = CachedResponse(
                model, r.completions, r.prompt_tokens, r.completion_tokens, o.cost_usd, o.latency_ms
            )
    if cache is not None:
        cache.put_many([(o.job.key, answered[id(o)]) for o in outcomes if id(o) in answered])
    for outcome in outcomes:
        response = answered.get(id(outcome))
        job = outcome.job
        if response is None:
            for sample_id in job.sample_ids:
                on_result(failed_result(model, outcome, sample_id))
            continue
        for i, sample_id in enumerate(job.sample_ids):
            # The first asker paid; repeats of the same prompt in this batch are answered for free.
            cost = outcome.cost_usd if i == 0 else 0.0
            on_result(cached_result(sample_id, job.key, response, cache_hit=i > 0, cost=cost))


def raise_for(summary: RunSummary, *, budget_usd: float | None, endpoint: str) -> None:
    """The error that ends a run cut short: rejected credentials, a teacher down, or the budget."""
    fatal = summary.fatal
    if fatal is not None and fatal.kind == "auth":
        raise TeacherError(
            f"the teacher refused the credentials: {fatal.message}",
            where=Location(field="teacher.api_key_env"),
            hint="check that the environment variable named by teacher.api_key_env holds a valid key",
        )
    if fatal is not None and fatal.kind == "unreachable":
        raise TeacherError(
            f"teacher unreachable at {endpoint}: {fatal.message}",
            where=Location(field="teacher.api_base"),
            hint="start or fix the teacher's server (or api_base), then `still run --resume RUN_ID`: "
            "answers so far are kept and only the unanswered prompts are asked",
        )
    if fatal is not None:
        raise TeacherError(f"the teacher cannot answer: {fatal.message}")
    if summary.budget_hit:
        raise BudgetExceededError(
            f"stopped before exceeding budget_usd = {budget_usd or 0.0:g}: spent ${summary.spent_usd:.4f}; "
            f"{summary.unsent} prompt(s) not sent",
            where=Location(field="teacher.budget_usd"),
            hint="raise teacher.budget_usd and resume the run; answers so far are kept",
        )
