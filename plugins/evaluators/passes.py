"""The batched pass that throughput and batched latency are measured on.

A local model is answered a second time, batched as in the evaluate stage, and this second pass is
timed: the stage's pass has by then shown the model every prompt shape once. On a GPU the first
use of each new shape loads and selects kernels, which made a model's first pass up to 20x slower
than its second on an H200 (and a student evaluated after the baseline, same shapes, looked 17x
faster than it): timing the first pass would reward whichever model ran later. Remote models are
not re-asked (it would cost money); their stage answers are timed per call already.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from stillhouse.kernel.interfaces import Answer, EvalSubject
from stillhouse.plugins.evaluators.common import is_remote, setting

_CACHE_ATTR = "_stillhouse_batched_pass"


@dataclass
class BatchedPass:
    answers: list[Answer]
    wall_s: float | None
    warm: bool
    """True when measured on a repeated pass (after a warm-up); False for the stage's own answers."""


def batched_pass(subject: EvalSubject, *, repeat: bool = True) -> BatchedPass:
    """The pass to measure: repeated and timed for local models (once per subject, shared by the
    evaluators that need it), else the evaluate stage's answers and wall time."""
    if not repeat or subject.model is None or is_remote(subject) or not subject.examples:
        return BatchedPass(subject.answers, subject.info.get("answer_wall_s"), warm=False)
    cached = getattr(subject, _CACHE_ATTR, None)
    if cached is None:
        prompts = [subject.task.student_messages(e) for e in subject.examples]
        start = time.perf_counter()
        answers = subject.model.answer(
            prompts,
            max_new_tokens=int(setting(subject, "max_new_tokens")),
            batch_size=int(setting(subject, "batch_size")),
        )
        cached = BatchedPass(answers, time.perf_counter() - start, warm=True)
        setattr(subject, _CACHE_ATTR, cached)  # an attribute, not info: info is written to the evaluation results
    return cached
