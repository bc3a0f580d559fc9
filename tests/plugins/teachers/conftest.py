"""Fixtures for the teacher tests: scriptable OpenAI-compatible servers on 127.0.0.1 and teachers
that are closed after each test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from stillhouse.plugins.teachers.litellm_teacher import LiteLLMTeacher


@pytest.fixture(autouse=True)
def _offline_litellm(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LITELLM_LOCAL_MODEL_COST_MAP", "True")




@pytest.fixture
def make_teacher() -> Iterator[Callable[..., LiteLLMTeacher]]:
    """``make_teacher(model=..., api_base=..., **options)``: fast retries unless overridden."""
    teachers: list[LiteLLMTeacher] = []

    def build(**options: Any) -> LiteLLMTeacher:
        options.setdefault("model", "openai/fake-teacher")
        options.setdefault("retry_base_delay", 0.01)
        options.setdefault("retry_max_delay", 0.05)
        teacher = LiteLLMTeacher(LiteLLMTeacher.Config(**options))
        teachers.append(teacher)
        return teacher

    yield build
    for teacher in teachers:
        teacher.close()
