"""Built-in student trainers: ``hf`` (transformers Trainer)."""

from __future__ import annotations

from typing import Any

from stillhouse.kernel import hookimpl
from stillhouse.kernel.interfaces import Register, StudentTrainer


@hookimpl
def register_students(register: Register[StudentTrainer[Any]]) -> None:
    from stillhouse.plugins.students.hf import HfStudentTrainer

    register(HfStudentTrainer)
