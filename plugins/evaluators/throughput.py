"""Throughput of the batched answering: generated tokens per second and requests per second.

The wall time is the one the evaluate stage measured around the whole batched pass
(``info["answer_wall_s"]``), so batching, padding and scheduling are all counted.
"""

from __future__ import annotations

from stillhouse.kernel.interfaces import EvalSubject, Evaluator, Metric
from stillhouse.plugins.evaluators.common import answered, batch_label, first_error


class ThroughputEvaluator(Evaluator):
    name = "throughput"
    description = "Generated tokens/s and requests/s of the batched evaluation pass."

    def evaluate(self, subject: EvalSubject) -> list[Metric]:
        done = answered(subject.answers)
        wall = subject.info.get("answer_wall_s")
        at = batch_label(subject)
        reason = None
        if not done:
            reason = f"no successful answer: {first_error(subject.answers)}"
        elif not wall or wall <= 0:
            reason = "not measured: the wall time of the batched answering was not recorded"
        tokens = sum(a.completion_tokens for a in done)
        token_reason = reason
        if reason is None and tokens == 0 and any(a.text for a in done):
            token_reason = "not measured: the model reported no completion token counts"
        return [
            Metric(
                "throughput_tokens_per_s",
                tokens / wall if token_reason is None else None,
                n=len(done),
                reason=token_reason,
                unit=f"tok/s{at}",
            ),
            Metric(
                "requests_per_s",
                len(done) / wall if reason is None else None,
                n=len(done),
                reason=reason,
                unit=f"req/s{at}",
            ),
        ]
