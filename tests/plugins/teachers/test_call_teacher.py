"""A third-party teacher implements one call and gets the kernel's engine: cache hits on a rerun,
retries of transient failures, the budget, accounting, and the errors that stop a run."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from stillhouse.kernel.errors import BudgetExceededError, TeacherError
from stillhouse.kernel.interfaces import TeacherRequest
from stillhouse.kernel.teaching import CallTeacher
from stillhouse.testing.fake_openai import fake_answer

from . import third_party
from .helpers import by_id, collect, prompts

# $1000 per million tokens: a fake-server call (5 prompt + 3 completion tokens) costs ~$0.008.
EXPENSIVE = {"input_per_mtok": 1000.0, "output_per_mtok": 1000.0}


@pytest.fixture
def make_call_teacher(make_host: Callable[..., Any]) -> Iterator[Callable[..., CallTeacher]]:
    """``make_call_teacher("chat-completions", **options)``: the plugin as the kernel builds it."""
    host = make_host(third_party, entry_points=False)
    teachers: list[CallTeacher] = []

    def build(name: str, **options: Any) -> CallTeacher:
        cls = host.get("teacher", name)
        options = {"model": "fake-teacher", "retry_base_delay": 0.01, "retry_max_delay": 0.05, **options}
        teacher = cls(cls.Config.model_validate(options))
        teachers.append(teacher)
        return teacher

    yield build
    for teacher in teachers:
        teacher.close()


def test_rerun_is_answered_from_the_cache(fake_server, make_call_teacher, tmp_path):
    server = fake_server()
    first = by_id(collect(make_call_teacher("chat-completions", api_base=server.url), prompts(12), tmp_path))
    assert server.stats.requests == 12

    # Another teacher (another run, another process) with the same prompts and settings.
    again = by_id(collect(make_call_teacher("chat-completions", api_base=server.url), prompts(12), tmp_path))

    assert server.stats.requests == 12
    for sample_id, result in again.items():
        assert result.cache_hit and not first[sample_id].cache_hit
        assert result.completions == first[sample_id].completions
        assert result.completions[0].text == fake_answer(f"question {sample_id[1:]}")
    # What decides the answer is in the key: another temperature or endpoint is asked afresh.
    collect(make_call_teacher("chat-completions", api_base=server.url, temperature=0.1), prompts(12), tmp_path)
    collect(make_call_teacher("chat-completions", api_base=server.url + "/"), prompts(12), tmp_path)
    assert server.stats.requests == 24  # a trailing slash is the same endpoint; the temperature is not


def test_transient_http_failures_are_retried_and_each_answer_paid_once(fake_server, make_call_teacher, tmp_path):
    server = fake_server(fault_rate=0.3, faults=("500", "429", "timeout"), hang_s=1.5, seed=3)
    teacher = make_call_teacher("chat-completions", api_base=server.url, timeout=0.4, max_retries=12, concurrency=8)

    results = by_id(collect(teacher, prompts(40), tmp_path))

    assert all(r.ok for r in results.values()), [r.error for r in results.values() if not r.ok]
    assert {"500", "429", "timeout"} <= set(server.stats.faults)
    assert set(server.stats.answered.values()) == {1}


def test_a_raised_connection_error_is_retried_in_a_blocking_teacher(make_call_teacher):
    teacher = make_call_teacher("scripted", max_retries=3)
    requests = [TeacherRequest("a", [{"role": "user", "content": "wobbly [[flaky:2]]"}])]

    [result] = collect(teacher, requests)

    assert result.ok and result.completions[0].text == "Echo: wobbly [[flaky:2]]"
    assert teacher.attempts["wobbly [[flaky:2]]"] == 3


def test_permanent_failures_are_recorded_without_retry(fake_server, make_call_teacher):
    server = fake_server()
    http = make_call_teacher("chat-completions", api_base=server.url, max_retries=5)
    scripted = make_call_teacher("scripted", max_retries=5)

    [rejected] = collect(http, [TeacherRequest("a", [{"role": "user", "content": "too long [[fail:400]]"}])])
    [broken] = collect(scripted, [TeacherRequest("b", [{"role": "user", "content": "x [[broken]]"}])])
    # (4 attempts: a fifth connection failure in a row would trip the circuit breaker instead)
    gave_up_teacher = make_call_teacher("scripted", max_retries=3)
    [gave_up] = collect(gave_up_teacher, [TeacherRequest("c", [{"role": "user", "content": "y [[flaky:9]]"}])])

    assert rejected.error.startswith("bad_request:") and "after 1 attempt(s)" in rejected.error
    assert server.stats.seen["too long [[fail:400]]"] == 1
    assert broken.error.startswith("error: this prompt always breaks") and "after 1 attempt(s)" in broken.error
    assert gave_up.error.startswith("connection:") and "after 4 attempt(s)" in gave_up.error


def test_budget_stops_before_it_is_exceeded_and_a_resume_finishes(fake_server, make_call_teacher, tmp_path):
    server = fake_server()
    options = dict(api_base=server.url, price=EXPENSIVE, max_tokens=10, concurrency=4)
    delivered = []

    with pytest.raises(BudgetExceededError):
        make_call_teacher("chat-completions", budget_usd=0.05, **options).generate(
            prompts(30), delivered.append, cache_dir=tmp_path
        )

    assert 0 < sum(r.cost_usd for r in delivered) <= 0.05
    assert 0 < len(delivered) < 30 and server.stats.answered_total == len(delivered)
    rest = by_id(collect(make_call_teacher("chat-completions", budget_usd=5.0, **options), prompts(30), tmp_path))
    assert all(r.ok for r in rest.values()) and sum(r.cache_hit for r in rest.values()) == len(delivered)
    assert set(server.stats.answered.values()) == {1}


def test_tokens_cost_and_latency_are_accounted(fake_server, make_call_teacher):
    server = fake_server(latency_s=0.01)
    teacher = make_call_teacher(
        "chat-completions", api_base=server.url, price={"input_per_mtok": 2, "output_per_mtok": 8}
    )
    same = [{"role": "user", "content": "the same question"}]

    results = by_id(collect(teacher, [TeacherRequest("a", list(same)), TeacherRequest("b", list(same))]))

    assert server.stats.requests == 1  # one distinct prompt, one call
    paid, repeat = sorted(results.values(), key=lambda r: r.cache_hit)
    assert paid.prompt_tokens > 0 and paid.completion_tokens > 0 and paid.latency_ms >= 10
    assert paid.cost_usd == pytest.approx(paid.prompt_tokens * 2e-6 + paid.completion_tokens * 8e-6)
    assert repeat.cache_hit and repeat.cost_usd == 0.0
    unpriced = collect(make_call_teacher("scripted"), prompts(1))
    assert unpriced[0].ok and unpriced[0].cost_usd is None  # no price: unknown, not free


def test_estimate_knows_the_cache_and_the_price(make_call_teacher, tmp_path):
    teacher = make_call_teacher("scripted", price={"input_per_mtok": 1.0, "output_per_mtok": 2.0}, max_tokens=10)
    request = [TeacherRequest("s0", [{"role": "user", "content": "x" * 40}])]

    before = teacher.estimate(request, tmp_path)
    collect(teacher, request, tmp_path)
    after = teacher.estimate(request, tmp_path)

    assert (before.calls, before.prompt_tokens, before.completion_tokens) == (1, 17, 10)
    assert before.cost_usd == pytest.approx((17 * 1.0 + 10 * 2.0) / 1e6)
    assert (after.calls, after.cached) == (0, 1)


def test_rejected_key_stops_the_run(fake_server, make_call_teacher, monkeypatch):
    monkeypatch.setenv("STILLHOUSE_TEST_KEY", "wrong")
    server = fake_server(api_key="right")
    teacher = make_call_teacher(
        "chat-completions", api_base=server.url, api_key_env="STILLHOUSE_TEST_KEY", concurrency=2
    )

    with pytest.raises(TeacherError) as raised:
        collect(teacher, prompts(20))
    assert raised.value.where.field == "teacher.api_key_env"
    assert server.stats.faults["401"] <= 2  # the calls already in flight, not all 20


def test_a_teacher_must_implement_a_call():
    class Silent(CallTeacher):
        name = "silent"

    with pytest.raises(TypeError, match="complete"):
        Silent(Silent.Config(model="m"))
