"""Latency per request: single-request (one prompt at a time, what one user waits) and batched
(what a caller of a batch waits), p50 and p95.

Local models are timed on a few prompts with batch_size=1, each prompt answered once untimed
first, and batched on a repeated pass (see ``passes``), so every model is measured warm. A remote model's answers were already timed one call each, so its
per-request numbers come from those answers and no extra (paid) calls are made.
"""

from __future__ import annotations

from pydantic import Field

from stillhouse.kernel.interfaces import EvalSubject, Evaluator, Metric, StrictModel, percentile
from stillhouse.plugins.evaluators.common import answered, batch_label, first_error, is_remote, setting
from stillhouse.plugins.evaluators.passes import batched_pass


class LatencyConfig(StrictModel):
    single_requests: int = Field(
        8, ge=0, description="Prompts answered one at a time to time single requests (0: skip)."
    )
    repeat: bool = Field(True, description="Time a repeated (warm) batched pass of a local model, not the first one.")


class LatencyEvaluator(Evaluator[LatencyConfig]):
    name = "latency"
    description = "p50/p95 latency per request, single-request and batched."
    Config = LatencyConfig

    def evaluate(self, subject: EvalSubject) -> list[Metric]:
        single, unit, reason = self._single(subject)
        measured = batched_pass(subject, repeat=self.config.repeat)
        batched = [a.latency_ms for a in answered(measured.answers)]
        batch_reason = None if batched else f"no successful answer: {first_error(measured.answers)}"
        batch_unit = f"ms ({'warm ' if measured.warm else ''}batched{batch_label(subject)})"
        return [
            _ms("latency_p50_ms", single, 50, unit, reason),
            _ms("latency_p95_ms", single, 95, unit, reason),
            _ms("batch_latency_p50_ms", batched, 50, batch_unit, batch_reason),
            _ms("batch_latency_p95_ms", batched, 95, batch_unit, batch_reason),
        ]

    def _single(self, subject: EvalSubject) -> tuple[list[float], str, str | None]:
        if is_remote(subject):
            timed = [a.latency_ms for a in answered(subject.answers)]
            why = None if timed else f"no successful answer: {first_error(subject.answers)}"
            return timed, "ms (per API call)", why
        if subject.model is None:
            return [], "ms", "not measured: no local model to time"
        count = min(self.config.single_requests, len(subject.examples))
        if count == 0:
            return [], "ms", "not measured: single_requests = 0 or no examples"
        max_new_tokens = int(setting(subject, "max_new_tokens"))
        prompts = [subject.task.student_messages(e) for e in subject.examples[:count]]
        # Each prompt once untimed, then timed: at batch size 1 every prompt length is a new shape,
        # and on a GPU a shape's first call loads and selects kernels (seen on an H200: p50 210 ms
        # cold vs 38 ms warm for the same model).
        answers = []
        for measure in (False, True):
            for prompt in prompts:
                answer = subject.model.answer([prompt], max_new_tokens=max_new_tokens, batch_size=1)
                if measure:
                    answers.extend(answer)
        timed = [a.latency_ms for a in answered(answers)]
        return timed, "ms (batch size 1)", None if timed else f"every request failed: {first_error(answers)}"


def _ms(name: str, values: list[float], q: float, unit: str, reason: str | None) -> Metric:
    value = percentile(values, q) if reason is None else None
    return Metric(name, value, n=len(values), reason=reason, higher_is_better=False, unit=unit)
