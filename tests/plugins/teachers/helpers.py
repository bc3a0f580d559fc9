"""Helpers shared by the teacher tests."""

from __future__ import annotations

from typing import Any

from stillhouse.kernel.interfaces import TeacherRequest, TeacherResult
from stillhouse.plugins.teachers.litellm_teacher import LiteLLMTeacher


def prompts(n: int, prefix: str = "question") -> list[TeacherRequest]:
    return [TeacherRequest(f"s{i}", [{"role": "user", "content": f"{prefix} {i}"}]) for i in range(n)]


def collect(
    teacher: LiteLLMTeacher, requests: list[TeacherRequest], cache_dir: Any = None, **kwargs: Any
) -> list[TeacherResult]:
    out: list[TeacherResult] = []
    teacher.generate(requests, out.append, cache_dir=cache_dir, **kwargs)
    return out


def by_id(results: list[TeacherResult]) -> dict[str, TeacherResult]:
    ids = [r.sample_id for r in results]
    assert len(ids) == len(set(ids)), "a sample was delivered twice"
    return {r.sample_id: r for r in results}
