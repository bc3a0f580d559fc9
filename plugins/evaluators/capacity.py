"""Capacity: how many requests per second a local model serves while a latency target still holds.

For each batch size B in ``batch_sizes`` the model answers B evaluation prompts at once,
``repeats`` times (different prompts each time, cycling through the split). Every request of a
batch waits the batch's wall time, so that is its latency; the batch serves B / wall requests/s.
The capacity is the best median requests/s among batch sizes whose latency over the repeats, at
the ``percentile`` (95 by default, nearest rank: with 3 repeats it is the slowest), stays within
``latency_target_ms``; the batch size that gives it is the number of concurrent requests the model
sustains at that target. Each number carries its n (the repeats) and its spread (``low``/``high``:
the slowest and fastest repeat), DESIGN.md §8.

This is a closed-loop, in-process measurement: no HTTP server or request queue in between, so a
deployment behind ``still serve`` adds its own overhead. Remote (API) models are not measured:
their capacity is the provider's, not the model's.
"""

from __future__ import annotations

import statistics
import time

from pydantic import Field

from stillhouse.kernel.interfaces import EvalSubject, Evaluator, Message, Metric, StrictModel, percentile


class CapacityConfig(StrictModel):
    batch_sizes: list[int] = Field(default_factory=lambda: [1, 2, 4, 8], min_length=1)
    repeats: int = Field(3, ge=1, description="Batches timed per batch size (the n of each number).")
    latency_target_ms: float = Field(2000.0, gt=0, description="The latency a request must get at `percentile`.")
    percentile: float = Field(95.0, gt=0, le=100)
    max_new_tokens: int | None = Field(None, gt=0, description="Tokens per answer; default: evaluate.max_new_tokens.")


class CapacityEvaluator(Evaluator[CapacityConfig]):
    name = "capacity"
    description = "Requests/s and concurrent requests a local model sustains within a latency target."
    Config = CapacityConfig

    def evaluate(self, subject: EvalSubject) -> list[Metric]:
        cfg = self.config
        target = f"p{cfg.percentile:g} latency ≤ {cfg.latency_target_ms:g} ms"
        why = None
        if subject.model is None or subject.info.get("remote"):
            why = "not measured: capacity is measured for local models (an API model's is its provider's)"
        elif not subject.examples:
            why = "not measured: no evaluation prompts"
        if why:
            return [
                Metric("capacity_requests_per_s", None, reason=why, unit=f"req/s at {target}"),
                Metric("capacity_concurrent_requests", None, reason=why, unit=f"requests at {target}"),
            ]
        model = subject.model
        assert model is not None  # checked above
        prompts = [subject.task.student_messages(e) for e in subject.examples]
        max_new = cfg.max_new_tokens or int(subject.info.get("max_new_tokens") or 128)
        metrics: list[Metric] = []
        best: tuple[float, int, list[float]] | None = None
        offset = 0
        for size in sorted(set(cfg.batch_sizes)):
            walls_ms = []
            for _ in range(cfg.repeats):
                batch: list[list[Message]] = [prompts[(offset + i) % len(prompts)] for i in range(size)]
                offset += size
                start = time.perf_counter()
                model.answer(batch, max_new_tokens=max_new, batch_size=size)
                walls_ms.append((time.perf_counter() - start) * 1000)
            rates = [size / (ms / 1000) for ms in walls_ms]
            tail = percentile(walls_ms, cfg.percentile)
            assert tail is not None  # repeats >= 1
            metrics.append(
                Metric(
                    f"capacity_latency_p{cfg.percentile:g}_ms_batch_{size}",
                    tail,
                    n=cfg.repeats,
                    higher_is_better=False,
                    unit=f"ms per request, {size} at once",
                    low=min(walls_ms),
                    high=max(walls_ms),
                )
            )
            metrics.append(
                Metric(
                    f"capacity_requests_per_s_batch_{size}",
                    statistics.median(rates),
                    n=cfg.repeats,
                    unit=f"req/s, {size} at once (median)",
                    low=min(rates),
                    high=max(rates),
                )
            )
            if tail <= cfg.latency_target_ms and (best is None or statistics.median(rates) > best[0]):
                best = (statistics.median(rates), size, rates)
        if best is None:
            why = f"no batch size in {sorted(set(cfg.batch_sizes))} met {target} (see capacity_latency_*)"
            return [
                Metric("capacity_requests_per_s", None, n=cfg.repeats, reason=why, unit=f"req/s at {target}"),
                Metric("capacity_concurrent_requests", None, n=cfg.repeats, reason=why, unit=f"requests at {target}"),
                *metrics,
            ]
        rate, size, rates = best
        return [
            Metric(
                "capacity_requests_per_s",
                rate,
                n=cfg.repeats,
                unit=f"req/s at {target} ({size} at once, {max_new} new tokens)",
                low=min(rates),
                high=max(rates),
            ),
            Metric("capacity_concurrent_requests", float(size), n=cfg.repeats, unit=f"requests at {target}"),
            *metrics,
        ]
