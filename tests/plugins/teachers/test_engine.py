"""Engine behaviour: concurrency bound, stop requests, callback failures, deployments, workers, rate limits."""

from __future__ import annotations

import threading

import pytest

from stillhouse.kernel.teaching import ratelimit
from stillhouse.testing.fake_openai import fake_answer

from .helpers import by_id, collect, prompts


def test_concurrency_is_bounded_and_used(fake_server, make_teacher):
    server = fake_server(latency_s=0.05)
    collect(make_teacher(api_base=server.url, concurrency=4), prompts(24))
    assert 1 < server.stats.max_inflight <= 4


def test_stop_request_ends_early_and_a_rerun_finishes(fake_server, make_teacher, tmp_path):
    server = fake_server(latency_s=0.02)
    requests = prompts(60)
    delivered = []
    stop = threading.Event()

    def on_result(result):
        delivered.append(result)
        if len(delivered) == 5:
            stop.set()

    teacher = make_teacher(api_base=server.url, concurrency=2)
    teacher.generate(requests, on_result, cache_dir=tmp_path, should_stop=stop.is_set)

    assert 5 <= len(delivered) < len(requests)
    by_id(delivered)
    rest = by_id(collect(teacher, requests, tmp_path))
    assert all(r.ok for r in rest.values()) and len(rest) == len(requests)
    assert set(server.stats.answered.values()) == {1}


def test_failing_callback_propagates_and_teacher_stays_usable(fake_server, make_teacher):
    server = fake_server()
    teacher = make_teacher(api_base=server.url)

    def explode(result):
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        teacher.generate(prompts(10), explode, cache_dir=None)
    assert all(r.ok for r in collect(teacher, prompts(3, prefix="after")))


def test_deployments_share_load_and_fall_back(fake_server, make_teacher):
    healthy, broken = fake_server(), fake_server(fault_rate=1.0, faults=("500",))
    teacher = make_teacher(
        deployments=[
            {"model": "openai/fake", "api_base": healthy.url},
            {"model": "openai/fake", "api_base": broken.url},
        ],
        max_retries=6,
    )

    results = by_id(collect(teacher, prompts(20)))

    assert all(r.ok for r in results.values())
    assert broken.stats.requests > 0  # the router did send it traffic ...
    assert healthy.stats.answered_total == 20  # ... and every sample fell back to the healthy one


def test_healthy_deployments_both_serve(fake_server, make_teacher):
    a, b = fake_server(latency_s=0.01), fake_server(latency_s=0.01)
    teacher = make_teacher(
        deployments=[{"model": "openai/fake", "api_base": a.url}, {"model": "openai/fake", "api_base": b.url}]
    )

    results = collect(teacher, prompts(40))

    assert all(r.ok for r in results)
    assert a.stats.answered_total > 0 and b.stats.answered_total > 0
    assert a.stats.answered_total + b.stats.answered_total == 40


@pytest.mark.slow  # starts two processes that import litellm (3-4 s each on a busy machine)
def test_worker_processes_answer_like_one_process(fake_server, make_teacher):
    server = fake_server(fault_rate=0.2, faults=("500", "429"))
    teacher = make_teacher(api_base=server.url, workers=2, concurrency=8, max_retries=10)

    results = by_id(collect(teacher, prompts(40)))

    assert all(r.ok for r in results.values())
    assert all(r.completions[0].text == fake_answer(f"question {r.sample_id[1:]}") for r in results.values())
    assert set(server.stats.answered.values()) == {1}


def test_auto_workers_only_for_large_remote_jobs(make_teacher, monkeypatch):
    monkeypatch.setattr("os.cpu_count", lambda: 16)
    remote = make_teacher(concurrency=32).config
    assert remote.workers == "auto"
    assert remote.worker_count(50_000) == 4
    assert remote.worker_count(200) == 1  # starting processes would cost more than it saves
    assert make_teacher(concurrency=4).config.worker_count(50_000) == 1
    assert make_teacher(model="hf/some/folder", concurrency=32).config.worker_count(50_000) == 1
    assert make_teacher(workers=3).config.worker_count(10) == 3
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    assert remote.worker_count(50_000) == 1


def test_local_teacher_cannot_use_worker_processes(make_teacher):
    with pytest.raises(ValueError, match="workers = 1"):
        make_teacher(model="hf/some/folder", workers=2)


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_token_bucket_refills_per_minute(monkeypatch):
    clock = _Clock()
    monkeypatch.setattr(ratelimit.time, "monotonic", clock)
    bucket = ratelimit._Bucket(60)  # one per second

    assert bucket.wait_time(60) == 0  # starts full: a burst is allowed
    bucket.take(60)
    assert bucket.wait_time(1) == pytest.approx(1.0)
    clock.now += 0.5
    assert bucket.wait_time(1) == pytest.approx(0.5)
    clock.now += 10
    assert bucket.wait_time(10) == 0
    assert bucket.wait_time(1000) == pytest.approx(49.5)  # larger than the bucket: waits for a full one


def test_token_reservations_are_settled_with_real_counts(monkeypatch):
    clock = _Clock()
    monkeypatch.setattr(ratelimit.time, "monotonic", clock)
    limiter = ratelimit.RateLimiter(rpm=None, tpm=600)

    import asyncio

    asyncio.run(limiter.acquire(500))
    limiter.settle(estimated=500, actual=100)  # the call used fewer tokens than reserved
    assert limiter._tokens.wait_time(450) == 0
    assert limiter._tokens.wait_time(550) > 0


def test_rpm_limit_spaces_requests(fake_server, make_teacher):
    server = fake_server()
    # 600 rpm = 10/s and a full bucket of 600 at start: all 12 pass at once, and the limiter is exercised.
    results = collect(make_teacher(api_base=server.url, rpm=600, tpm=100_000), prompts(12))
    assert all(r.ok for r in results)
