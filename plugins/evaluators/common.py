"""Helpers shared by the built-in evaluators: reading a subject's settings and successful answers."""

from __future__ import annotations

from typing import Any

from stillhouse.kernel.interfaces import Answer, EvalSubject, EvaluateConfig


def setting(subject: EvalSubject, key: str) -> Any:
    """A setting of ``[evaluate]`` (max_new_tokens, usd_per_hour ...) as the evaluate stage passed it
    in ``subject.info``, else that section's default, so an evaluator also works on its own."""
    value = subject.info.get(key)
    if value is not None:
        return value
    return EvaluateConfig.model_fields[key].get_default(call_default_factory=True)


def batch_label(subject: EvalSubject) -> str:
    """ " at batch size N" when the evaluate stage said which batch size it used, else nothing:
    a unit never claims a setting nobody reported."""
    size = subject.info.get("batch_size")
    return f" at batch size {size}" if size else ""


def is_remote(subject: EvalSubject) -> bool:
    """True for models behind an API (their per-request latency and cost are measured per call).

    Said by ``info["remote"]``, else by a teacher's ``describe()`` (``local: False`` for an API
    model), else by a ``remote`` attribute on the ChatModel; a model that says nothing is local.
    """
    info = subject.info
    if info.get("remote") is not None:
        return bool(info["remote"])
    if info.get("local") is not None:
        return not info["local"]
    return bool(getattr(subject.model, "remote", False))


def answered(answers: list[Answer]) -> list[Answer]:
    """Answers that succeeded: failed requests are counted apart, never timed or priced as zero."""
    return [a for a in answers if a.error is None]


def first_error(answers: list[Answer]) -> str:
    return next((a.error for a in answers if a.error), "no answers")
