"""Timing models against each other so that the machine's mood cannot decide the result.

Timing role A, then B, on a shared machine measures the machine: a background job during A's pass
makes A look slow (the first release's report once called a 2.2× faster student twice as slow).
:func:`interleaved_timing` therefore loads every role first, warms each up, then times them in turn
on the same prompts (A B C on prompt 1, A B C on prompt 2 ..., the role order rotated each round)
with the output length forced, so a slow spell falls on all roles alike; it repeats rounds until
each role's median per-token time is known to the configured precision or the time budget is
spent. :func:`sequential_timing` is the old method, kept for the tests and benchmarks that show
why it is not used.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from stillhouse.kernel.interfaces import ChatModel, Message, Metric, Timing, TimingConfig
from stillhouse.kernel.stats import summarize

TIMING_METRICS = ("ttft_ms", "decode_ms_per_token", "request_latency_ms")

OnRequest = Callable[[int, int, str], None]
"""``on_request(done, total, role)`` before each timed request: progress, and a hook for tests."""


@dataclass
class RoleTimings:
    role: str
    timings: list[Timing] = field(default_factory=list)
    error: str | None = None

    def per_token_ms(self) -> list[float]:
        return [v for t in self.timings if (v := t.per_token_ms) is not None]


def _time_one(model: ChatModel, prompt: list[Message], new_tokens: int, record: RoleTimings) -> None:
    if record.error is not None:
        return
    try:
        record.timings.append(model.time_request(prompt, new_tokens=new_tokens))
    except NotImplementedError as exc:
        record.error = f"not measured: {exc}"
    except Exception as exc:  # a failing model loses its timing, not the other roles'
        record.error = f"timing failed: {type(exc).__name__}: {exc}"


def _precise(records: Mapping[str, RoleTimings], rel_ci: float) -> bool:
    for record in records.values():
        values = record.per_token_ms()
        if record.error is None and (not values or summarize(values).rel_half_width > rel_ci):
            return False
    return True


def interleaved_timing(
    models: Mapping[str, ChatModel],
    prompts: Sequence[list[Message]],
    config: TimingConfig,
    *,
    on_request: OnRequest | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> dict[str, RoleTimings]:
    """Time every model on every prompt, interleaved, with ``config.new_tokens`` forced tokens."""
    roles = list(models)
    records = {role: RoleTimings(role) for role in roles}
    prompts = list(prompts)[: config.prompts]
    per_round = len(prompts) * len(roles)
    total = per_round * (config.warmup + config.max_rounds)
    done = 0
    started = None
    for round_no in range(config.warmup + config.max_rounds):
        timed = round_no >= config.warmup
        if timed and started is None:
            started = clock()
            for record in records.values():
                record.timings.clear()  # warm-up requests are not measurements
        shift = round_no % len(roles)
        order = roles[shift:] + roles[:shift]  # no role always goes first (or after the same one)
        for prompt in prompts:
            for role in order:
                if on_request is not None:
                    on_request(done, total, role)
                _time_one(models[role], prompt, config.new_tokens, records[role])
                done += 1
        if not timed or started is None:
            continue
        rounds = round_no - config.warmup + 1
        if rounds >= config.min_rounds and (clock() - started >= config.budget_s or _precise(records, config.rel_ci)):
            break
    if on_request is not None:
        on_request(total, total, "")
    return records


def sequential_timing(
    models: Mapping[str, ChatModel],
    prompts: Sequence[list[Message]],
    *,
    new_tokens: int,
    repeats: int = 1,
    on_request: OnRequest | None = None,
) -> dict[str, RoleTimings]:
    """The old method: all of A's requests, then all of B's. Not used by the evaluate stage; kept so
    tests and benchmarks can show what interleaving protects against."""
    records = {role: RoleTimings(role) for role in models}
    total = len(models) * len(prompts) * repeats
    done = 0
    for role, model in models.items():
        for _ in range(repeats):
            for prompt in prompts:
                if on_request is not None:
                    on_request(done, total, role)
                _time_one(model, prompt, new_tokens, records[role])
                done += 1
    return records


def timing_metrics(record: RoleTimings, new_tokens: int) -> list[Metric]:
    """``ttft_ms``, ``decode_ms_per_token`` and ``request_latency_ms``: each the median over the
    timed requests with its 95% CI (``low``/``high``), the IQR and n in the unit."""
    names = TIMING_METRICS
    if record.error is not None or not record.timings:
        reason = record.error or "not measured: no timed requests"
        return [Metric(name, None, reason=reason, higher_is_better=False) for name in names]
    forced = all(t.forced for t in record.timings)
    length = f"{new_tokens} forced tokens" if forced else "tokens as produced (length not forced)"
    series = {
        "ttft_ms": [t.ttft_ms for t in record.timings if t.ttft_ms is not None],
        "decode_ms_per_token": record.per_token_ms(),
        "request_latency_ms": [t.total_ms for t in record.timings],
    }
    metrics = []
    for name, values in series.items():
        if not values:
            metrics.append(Metric(name, None, reason="not measured: the model reports no time to first token", higher_is_better=False))
            continue
        s = summarize(values)
        unit = f"{'ms/token' if name == 'decode_ms_per_token' else 'ms'} (median, 95% CI; IQR {s.q1:.3g}–{s.q3:.3g}; interleaved, {length})"
        metrics.append(Metric(name, s.median, n=s.n, higher_is_better=False, unit=unit, low=s.low, high=s.high))
    return metrics


__all__ = ["TIMING_METRICS", "RoleTimings", "interleaved_timing", "sequential_timing", "timing_metrics"]
