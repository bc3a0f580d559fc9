"""Throughput of batched answering: generated tokens per second and requests per second.

Measured on the pass from ``passes.batched_pass``: for a local model a repeated, warm batched pass
timed around the whole of it (batching, padding and scheduling counted); for a remote model the
evaluate stage's pass and the wall time it measured (``info["answer_wall_s"]``).
"""

from __future__ import annotations

from pydantic import Field

from stillhouse.kernel.interfaces import EvalSubject, Evaluator, Metric, StrictModel
from stillhouse.plugins.evaluators.common import answered, batch_label, first_error
from stillhouse.plugins.evaluators.passes import batched_pass


class ThroughputConfig(StrictModel):
    repeat: bool = Field(True, description="Time a repeated (warm) batched pass of a local model, not the first one.")


class ThroughputEvaluator(Evaluator[ThroughputConfig]):
    name = "throughput"
    description = "Generated tokens/s and requests/s of a batched pass over the evaluation prompts."
    Config = ThroughputConfig

    def evaluate(self, subject: EvalSubject) -> list[Metric]:
        measured = batched_pass(subject, repeat=self.config.repeat)
        done = answered(measured.answers)
        wall = measured.wall_s
        at = ("" if not measured.warm else " (warm pass)") + batch_label(subject)
        reason = None
        if not done:
            reason = f"no successful answer: {first_error(measured.answers)}"
        elif not wall or wall <= 0:
            reason = "not measured: the wall time of the batched answering was not recorded"
        tokens = sum(a.completion_tokens for a in done)
        token_reason = reason
        if reason is None and tokens == 0 and any(a.text for a in done):
            token_reason = "not measured: the model reported no completion token counts"
        # where reason is None the wall time was recorded and is > 0; the `is not None` narrows it
        return [
            Metric(
                "throughput_tokens_per_s",
                tokens / wall if token_reason is None and wall is not None else None,
                n=len(done),
                reason=token_reason,
                unit=f"tok/s{at}",
            ),
            Metric(
                "requests_per_s",
                len(done) / wall if reason is None and wall is not None else None,
                n=len(done),
                reason=reason,
                unit=f"req/s{at}",
            ),
        ]
