"""The content-addressed response cache: reruns are free, keys cover what decides the answer."""

from __future__ import annotations

from stillhouse.kernel.interfaces import TeacherRequest
from stillhouse.kernel.teaching.cache import ResponseCache

from .helpers import by_id, collect, prompts


def test_rerun_makes_zero_calls_and_reports_original_cost(fake_server, make_teacher, tmp_path):
    server = fake_server()
    cache_dir = tmp_path / "cache"
    first = by_id(
        collect(
            make_teacher(api_base=server.url, price={"input_per_mtok": 2, "output_per_mtok": 8}), prompts(25), cache_dir
        )
    )
    calls = server.stats.requests

    # A fresh teacher (another run, another process) with the same prompts and settings.
    second = by_id(
        collect(
            make_teacher(api_base=server.url, price={"input_per_mtok": 2, "output_per_mtok": 8}), prompts(25), cache_dir
        )
    )

    assert server.stats.requests == calls == 25
    for sample_id, result in second.items():
        original = first[sample_id]
        assert result.cache_hit and result.cost_usd == 0.0
        assert not original.cache_hit and original.cost_usd > 0
        assert result.completions == original.completions
        assert result.cache_key == original.cache_key
        assert (result.prompt_tokens, result.completion_tokens, result.latency_ms) == (
            original.prompt_tokens,
            original.completion_tokens,
            original.latency_ms,
        )


def test_cache_key_covers_model_messages_sampling_and_n(fake_server, make_teacher, tmp_path):
    server = fake_server()
    cache_dir = tmp_path / "cache"
    requests = prompts(3)
    collect(make_teacher(api_base=server.url, temperature=0.2), requests, cache_dir)
    assert server.stats.requests == 3

    collect(make_teacher(api_base=server.url, temperature=0.2), requests, cache_dir)
    assert server.stats.requests == 3  # same everything: served from the cache
    collect(make_teacher(api_base=server.url, temperature=0.3), requests, cache_dir)
    assert server.stats.requests == 6
    collect(make_teacher(api_base=server.url, temperature=0.2, samples=2), requests, cache_dir)
    assert server.stats.requests == 9
    collect(make_teacher(api_base=server.url, temperature=0.2, max_tokens=99), requests, cache_dir)
    assert server.stats.requests == 12
    collect(make_teacher(api_base=server.url, temperature=0.2, model="openai/other"), requests, cache_dir)
    assert server.stats.requests == 15
    collect(make_teacher(api_base=server.url, temperature=0.2), prompts(3, prefix="reworded"), cache_dir)
    assert server.stats.requests == 18


def test_repeated_prompt_is_called_once(fake_server, make_teacher):
    server = fake_server()
    same = [{"role": "user", "content": "the same question"}]
    requests = [TeacherRequest("a", list(same)), TeacherRequest("b", list(same)), TeacherRequest("c", list(same))]

    results = by_id(collect(make_teacher(api_base=server.url), requests))

    assert server.stats.requests == 1
    assert all(r.ok for r in results.values())
    assert sorted(r.cache_hit for r in results.values()) == [False, True, True]


def test_failures_are_not_cached(fake_server, make_teacher, tmp_path):
    server = fake_server()
    requests = [TeacherRequest("e", [{"role": "user", "content": "again [[empty]]"}])]
    collect(make_teacher(api_base=server.url), requests, tmp_path)
    [again] = collect(make_teacher(api_base=server.url), requests, tmp_path)

    assert server.stats.requests == 2
    assert not again.cache_hit and again.error


def test_estimate_calls_nothing_and_knows_the_cache(fake_server, make_teacher, tmp_path):
    server = fake_server()
    price = {"input_per_mtok": 1.0, "output_per_mtok": 4.0}
    teacher = make_teacher(api_base=server.url, max_tokens=50, samples=2, price=price)
    requests = prompts(10)

    before = teacher.estimate(requests, tmp_path)
    assert server.stats.requests == 0
    assert (before.calls, before.cached) == (10, 0)
    assert before.completion_tokens == 10 * 50 * 2  # the upper bound: max_tokens x samples per call
    assert before.prompt_tokens > 0
    assert before.cost_usd == before.prompt_tokens * 1e-6 + before.completion_tokens * 4e-6
    assert "upper bound" in before.note

    collect(teacher, requests[:6], tmp_path)
    after = teacher.estimate(requests, tmp_path)
    assert (after.calls, after.cached) == (4, 6)
    assert after.cost_usd < before.cost_usd


def test_estimate_without_a_price_says_so(make_teacher):
    teacher = make_teacher(api_base="https://teacher.example.com/v1")
    estimate = teacher.estimate(prompts(2), None)
    assert estimate.cost_usd is None
    assert "price unknown" in estimate.note


def test_cache_file_is_shared_between_handles(fake_server, make_teacher, tmp_path):
    server = fake_server()
    collect(make_teacher(api_base=server.url), prompts(4), tmp_path)
    reader = ResponseCache(tmp_path)
    try:
        assert len(reader) == 4
    finally:
        reader.close()
