"""The teacher against a misbehaving OpenAI-compatible server on 127.0.0.1, through real litellm."""

from __future__ import annotations

import pytest

from stillhouse.kernel.errors import ConfigError, TeacherError
from stillhouse.testing.fake_openai import fake_answer

from .helpers import by_id, collect, prompts


def test_thirty_percent_faults_every_sample_answered_once(fake_server, make_teacher, tmp_path):
    server = fake_server(fault_rate=0.3, faults=("500", "429", "timeout"), hang_s=1.5, seed=3)
    teacher = make_teacher(api_base=server.url, timeout=0.4, max_retries=12, concurrency=16)
    requests = prompts(90)

    results = by_id(collect(teacher, requests, tmp_path / "cache"))

    assert set(results) == {r.sample_id for r in requests}
    for request in requests:
        result = results[request.sample_id]
        assert result.ok, result.error
        assert result.completions[0].text == fake_answer(request.messages[0]["content"])
        assert not result.cache_hit
    # The faults really happened, of every kind, and none led to a second paid answer.
    assert {"500", "429", "timeout"} <= set(server.stats.faults)
    assert sum(server.stats.faults.values()) >= 15
    assert server.stats.answered_total == len(requests)
    assert set(server.stats.answered.values()) == {1}


def test_malformed_json_and_empty_completion_are_failures_with_reasons(fake_server, make_teacher):
    server = fake_server()
    teacher = make_teacher(api_base=server.url, max_retries=2)
    requests = prompts(4)
    requests[1].messages[0]["content"] = "broken [[malformed]]"
    requests[2].messages[0]["content"] = "nothing [[empty]]"

    results = by_id(collect(teacher, requests))

    assert results["s0"].ok and results["s3"].ok
    malformed, empty = results["s1"], results["s2"]
    assert not malformed.ok and malformed.error.startswith("malformed_response:")
    assert "after 3 attempt(s)" in malformed.error  # retried: a garbled body is usually transient
    assert not empty.ok and empty.error.startswith("empty_completion:")
    assert "finish_reason=stop" in empty.error
    assert server.stats.seen["nothing [[empty]]"] == 1  # not retried: it would be paid for again
    assert server.stats.seen["broken [[malformed]]"] == 3


def test_client_errors_are_recorded_without_retry(fake_server, make_teacher):
    server = fake_server()
    teacher = make_teacher(api_base=server.url, max_retries=5)
    requests = prompts(2)
    requests[0].messages[0]["content"] = "too long [[fail:400]]"

    results = by_id(collect(teacher, requests))

    assert results["s0"].error.startswith("bad_request:") and "after 1 attempt(s)" in results["s0"].error
    assert results["s1"].ok
    assert server.stats.seen["too long [[fail:400]]"] == 1


def test_unreachable_server_is_retried_then_recorded(make_teacher):
    teacher = make_teacher(api_base="http://127.0.0.1:9/v1", max_retries=2, timeout=2)

    [result] = collect(teacher, prompts(1))

    assert result.error.startswith("connection:"), result.error
    assert "after 3 attempt(s)" in result.error


def test_missing_api_key_env_fails_before_any_call(fake_server, make_teacher, monkeypatch):
    monkeypatch.delenv("STILLHOUSE_TEST_MISSING_KEY", raising=False)
    server = fake_server()
    teacher = make_teacher(api_base=server.url, api_key_env="STILLHOUSE_TEST_MISSING_KEY")

    with pytest.raises(ConfigError) as raised:
        teacher.check()
    assert raised.value.where.field == "teacher.api_key_env"
    assert "STILLHOUSE_TEST_MISSING_KEY" in raised.value.what
    with pytest.raises(ConfigError):
        collect(teacher, prompts(3))
    assert server.stats.requests == 0


def test_missing_deployment_key_env_names_the_deployment(fake_server, make_teacher, monkeypatch):
    monkeypatch.delenv("STILLHOUSE_TEST_MISSING_KEY", raising=False)
    server = fake_server()
    teacher = make_teacher(
        deployments=[
            {"model": "openai/a", "api_base": server.url},
            {"model": "openai/b", "api_key_env": "STILLHOUSE_TEST_MISSING_KEY"},
        ]
    )

    with pytest.raises(ConfigError) as raised:
        collect(teacher, prompts(2))
    assert raised.value.where.field == "teacher.deployments[1].api_key_env"
    assert server.stats.requests == 0


def test_rejected_key_stops_the_run_with_a_clear_error(fake_server, make_teacher, monkeypatch):
    monkeypatch.setenv("STILLHOUSE_TEST_KEY", "wrong")
    server = fake_server(api_key="right")
    teacher = make_teacher(api_base=server.url, api_key_env="STILLHOUSE_TEST_KEY", concurrency=4)

    with pytest.raises(TeacherError) as raised:
        collect(teacher, prompts(40))
    assert raised.value.where.field == "teacher.api_key_env"
    assert server.stats.faults["401"] <= 4  # the calls already in flight, not all 40


def test_right_key_is_sent(fake_server, make_teacher, monkeypatch):
    monkeypatch.setenv("STILLHOUSE_TEST_KEY", "right")
    server = fake_server(api_key="right")
    teacher = make_teacher(api_base=server.url, api_key_env="STILLHOUSE_TEST_KEY")

    assert all(r.ok for r in collect(teacher, prompts(3)))
