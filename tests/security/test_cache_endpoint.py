"""The response cache knows which server answered: the same model name pointed at another server
(or routed over other deployments) is asked again, never served the first server's answers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from stillhouse.plugins.teachers.litellm_teacher import LiteLLMTeacher
from tests.plugins.teachers.helpers import by_id, collect, prompts


@pytest.fixture
def teachers() -> Iterator[list[LiteLLMTeacher]]:
    made: list[LiteLLMTeacher] = []
    yield made
    for teacher in made:
        teacher.close()


def teacher(made: list[LiteLLMTeacher], **options: Any) -> LiteLLMTeacher:
    built = LiteLLMTeacher(LiteLLMTeacher.Config(model="openai/fake-teacher", retry_base_delay=0.01, **options))
    made.append(built)
    return built


def test_same_model_name_on_another_server_is_not_served_from_cache(fake_server, teachers, tmp_path: Path) -> None:
    first, second = fake_server(), fake_server()
    cache = tmp_path / "cache"
    requests = prompts(16)
    collect(teacher(teachers, api_base=first.url), requests, cache)
    assert first.stats.requests == 16

    again = by_id(collect(teacher(teachers, api_base=first.url + "/"), requests, cache))  # same server, spelt differently
    assert first.stats.requests == 16 and all(r.cache_hit for r in again.values())

    moved = by_id(collect(teacher(teachers, api_base=second.url), requests, cache))
    assert second.stats.requests == 16, "answers of the first server were served for the second"
    assert not any(r.cache_hit for r in moved.values())

    # Routing over deployments is another identity again; the same deployments hit the cache.
    routed = [{"model": "openai/fake-teacher", "api_base": first.url}, {"model": "openai/fake-teacher", "api_base": second.url}]
    collect(teacher(teachers, deployments=routed), requests, cache)
    asked = first.stats.requests + second.stats.requests
    assert asked == 48
    collect(teacher(teachers, deployments=list(reversed(routed))), requests, cache)
    assert first.stats.requests + second.stats.requests == asked
