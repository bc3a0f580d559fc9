"""``still serve``: a real server process over a tiny transformers model, called through litellm."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from stillhouse.plugins.teachers.openai_format import RequestError, parse_chat_request
from stillhouse.testing.serving import serve_model

from .helpers import by_id, collect, prompts


@pytest.fixture(scope="module")
def served(tiny_model_dir) -> Iterator[str]:
    """``still serve`` on a free port (one process for the module); yields its base URL."""
    with serve_model(tiny_model_dir, "--max-batch", "4", "--name", "tiny") as api_base:
        yield api_base


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def _post(url: str, body: dict) -> tuple[int, dict]:
    request = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.mark.slow  # a server process that imports torch and loads a model
def test_still_serve_answers_litellm_in_batches(served, make_teacher):
    teacher = make_teacher(
        model="openai/tiny", api_base=served, temperature=1.0, seed=3, samples=2, max_tokens=6, concurrency=8
    )
    health_url = served.removesuffix("/v1") + "/health"
    batches_before = _get(health_url)["batches"]

    results = by_id(collect(teacher, prompts(8)))

    for result in results.values():
        assert result.ok, result.error
        assert len(result.completions) == 2
        assert result.prompt_tokens > 0 and 0 < result.completion_tokens <= 12
        assert result.cost_usd == 0.0  # a server on this machine
    batches = _get(health_url)["batches"] - batches_before
    assert 0 < batches < 8  # 8 concurrent requests shared batches
    assert _get(served + "/models")["data"][0]["id"] == "tiny"


@pytest.mark.slow
def test_still_serve_speaks_the_openai_protocol(served):
    status, body = _post(
        served + "/chat/completions",
        {"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4, "temperature": 0, "n": 2},
    )
    assert status == 200
    assert body["object"] == "chat.completion" and len(body["choices"]) == 2
    assert body["usage"]["completion_tokens"] <= 8
    assert body["usage"]["total_tokens"] == body["usage"]["prompt_tokens"] + body["usage"]["completion_tokens"]
    assert body["choices"][0]["finish_reason"] in ("stop", "length")

    status, body = _post(
        served + "/chat/completions", {"messages": [{"role": "user", "content": "hi"}], "stream": "yes"}
    )
    assert status == 400 and "'stream'" in body["error"]["message"]  # streaming itself: test_serve_stream.py
    status, body = _post(served + "/chat/completions", {"messages": []})
    assert status == 400


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"messages": [{"role": "user", "content": "x"}], "n": 0}, "'n'"),
        ({"messages": [{"role": "user", "content": "x"}], "temperature": 3}, "temperature"),
        ({"messages": [{"role": "user", "content": "x"}], "max_tokens": -1}, "max_tokens"),
        ({"messages": [{"role": "user", "content": "x"}], "stop": 5}, "stop"),
        ({"messages": "hello"}, "messages"),
    ],
)
def test_bad_requests_are_refused_with_the_field(body, message):
    with pytest.raises(RequestError, match=message):
        parse_chat_request(body)


def test_request_parsing_accepts_openai_variants():
    params = parse_chat_request(
        {
            "messages": [{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}],
            "max_completion_tokens": 9,
            "stop": "END",
            "logprobs": True,
            "top_logprobs": 3,
        }
    )
    assert params.messages == [{"role": "user", "content": "ab"}]
    assert (params.max_tokens, params.stop, params.logprobs, params.top_logprobs, params.temperature) == (
        9,
        ["END"],
        True,
        3,
        1.0,
    )
