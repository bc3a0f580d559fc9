"""The plugin kinds ``still plugin new`` can write: what each one's class and module are called.

The texts themselves are files under ``templates/<kind>/`` (shipped as package data):
``plugin.py.tmpl`` (a working minimal plugin), ``tests.py.tmpl`` and ``test_imports.py.tmpl``
(the kind's part of the generated test), ``usage.toml.tmpl`` (config lines for the README).
The hook that registers a kind is the kernel's ``REGISTRATION_HOOKS[kind]``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class KindTemplate:
    suffix: str
    """Class name suffix: ``Task``, ``Teacher`` ..."""
    module: str
    """Name of the plugin module inside the generated package."""
    summary: str
    """What the generated plugin does, for its README and pyproject description."""


KINDS: dict[str, KindTemplate] = {
    "task": KindTemplate(
        "Task", "task", "a text classification task type: the teacher picks one of a configured set of labels"
    ),
    "teacher": KindTemplate(
        "Teacher", "teacher", "a teacher backend that calls an OpenAI-compatible chat completions endpoint over HTTP"
    ),
    "student": KindTemplate(
        "Trainer", "trainer", "a student trainer: full fine-tuning of a local transformers model with a plain PyTorch loop"
    ),
    "loss": KindTemplate("Loss", "loss", "a distillation loss: focal cross-entropy on the teacher's text"),
    "evaluator": KindTemplate(
        "Evaluator", "evaluator", "an evaluator: how long the model's answers are, and how often they are empty"
    ),
    "reporter": KindTemplate(
        "Reporter", "reporter", "a reporter: a compact JSON summary of each role's metrics and the student's retention"
    ),
}
