"""Cost: what answering the evaluation split cost, in total and per 1,000 requests.

API models: the sum of the per-call ``cost_usd`` litellm reported; if the price of some calls is
unknown the total is missing (a partial sum would understate it). Local models cost compute time:
priced when ``[evaluate] usd_per_hour`` is set (wall time of the batched pass × rate), otherwise
missing with that reason. A local model's cost is never shown as $0.
"""

from __future__ import annotations

from stillhouse.kernel.interfaces import EvalSubject, Evaluator, Metric
from stillhouse.plugins.evaluators.common import answered, is_remote, setting


class CostEvaluator(Evaluator):
    name = "cost"
    description = "Total cost and cost per 1k requests (API prices, or compute time at evaluate.usd_per_hour)."

    def evaluate(self, subject: EvalSubject) -> list[Metric]:
        answers = subject.answers
        n = len(answers)
        total, unit, reason = self._total(subject)
        if reason is None and n == 0:
            reason = "no requests"
        per_1k = total / n * 1000 if reason is None and total is not None else None
        return [
            Metric(
                "cost_usd_total",
                total if reason is None else None,
                n=n,
                reason=reason,
                higher_is_better=False,
                unit=unit,
            ),
            Metric("cost_per_1k_requests_usd", per_1k, n=n, reason=reason, higher_is_better=False, unit=unit),
        ]

    def _total(self, subject: EvalSubject) -> tuple[float | None, str, str | None]:
        costs = [a.cost_usd for a in subject.answers]
        priced = any(c for c in costs)  # a local model reports None or 0 for every answer
        if is_remote(subject) or priced:
            unknown = sum(1 for a in answered(subject.answers) if a.cost_usd is None)
            if unknown:
                return (
                    None,
                    "USD",
                    f"price unknown for {unknown} of {len(subject.answers)} requests (set teacher.price)",
                )
            return float(sum(c or 0.0 for c in costs)), "USD (API)", None
        rate = setting(subject, "usd_per_hour")
        wall = subject.info.get("answer_wall_s")
        if rate is None:
            return None, "USD", "local model: compute not priced (set evaluate.usd_per_hour)"
        if not wall:
            return None, "USD", "local model: wall time of the batched answering not recorded"
        return float(rate) * float(wall) / 3600, f"USD (compute at ${rate}/h)", None
