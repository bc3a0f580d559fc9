"""Malformed and heavy requests to ``still serve`` (issue 19), over real HTTP to a real server
process on the tiny model: each is answered with an OpenAI-format JSON error and the right status,
and a long request does not starve short ones. Each case failed on main before the fix."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from stillhouse.plugins.teachers.openai_format import RequestError, parse_chat_request
from stillhouse.testing.serving import serve_model

CONTEXT = 1024  # the tiny model's max_position_embeddings (stillhouse.testing.tiny)
HI = [{"role": "user", "content": "hi"}]


@pytest.fixture(scope="module")
def served(tiny_model_dir) -> Iterator[str]:
    """``still serve`` on a free port for the module; yields its base URL."""
    with serve_model(tiny_model_dir, "--name", "tiny") as api_base:
        yield api_base


def request(url: str, body: dict | None = None, *, method: str | None = None, timeout: float = 60) -> tuple[int, dict]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data, {"Content-Type": "application/json"}, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        try:
            return exc.code, json.loads(raw)
        except json.JSONDecodeError:
            return exc.code, {"not_json": raw.decode(errors="replace")}


def assert_openai_error(status: int, body: dict, expected: int, *words: str) -> None:
    assert status == expected, body
    error = body.get("error")
    assert isinstance(error, dict) and {"message", "type", "code"} <= set(error), body
    for word in words:
        assert word in error["message"], (word, error["message"])


# -- request validation (no model needed) ----------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"max_tokens": 0}, "max_tokens"),
        ({"max_completion_tokens": 0}, "max_completion_tokens"),
        ({"max_tokens": True}, "max_tokens"),
        ({"temperature": True}, "temperature"),
        ({"top_p": False}, "top_p"),
        ({"n": True}, "'n'"),
        ({"seed": True}, "seed"),
        ({"seed": 2**80}, "seed"),
        ({"logprobs": 1}, "logprobs"),
    ],
)
def test_bad_numbers_are_refused(extra, field):
    with pytest.raises(RequestError, match=field):
        parse_chat_request({"messages": HI, **extra})


# -- through a real server -------------------------------------------------------------------------


@pytest.mark.slow  # a server process that imports torch and loads a model
def test_bad_requests_get_400_json_not_500(served):
    url = served + "/chat/completions"
    for extra, field in (
        ({"max_tokens": 0}, "max_tokens"),
        ({"max_tokens": True}, "max_tokens"),
        ({"temperature": False}, "temperature"),
        ({"seed": 2**80}, "seed"),
    ):
        status, body = request(url, {"messages": HI, **extra})
        assert_openai_error(status, body, 400, field)


@pytest.mark.slow
def test_context_length_is_checked(served):
    url = served + "/chat/completions"
    status, body = request(url, {"messages": HI, "max_tokens": CONTEXT})
    assert_openai_error(status, body, 400, f"maximum context length is {CONTEXT}")
    assert body["error"]["code"] == "context_length_exceeded"
    long_prompt = [{"role": "user", "content": "word " * (2 * CONTEXT)}]
    status, body = request(url, {"messages": long_prompt, "max_tokens": 4})
    assert_openai_error(status, body, 400, "in the messages")
    status, body = request(url, {"messages": HI, "max_tokens": 4, "temperature": 0})
    assert status == 200, body


@pytest.mark.slow
def test_unknown_path_and_wrong_method_answer_openai_json(served):
    assert_openai_error(*request(served + "/nothing-here"), 404)
    assert_openai_error(*request(served + "/chat/completions"), 405)  # GET on a POST route
    assert_openai_error(*request(served + "/models", {"x": 1}, method="POST"), 405)


@pytest.mark.slow
def test_short_requests_finish_while_a_long_one_runs(served):
    url = served + "/chat/completions"
    health = served.removesuffix("/v1") + "/health"
    finished: list[tuple[str, int, dict]] = []

    def ask(name: str, max_tokens: int) -> None:
        status, body = request(url, {"messages": HI, "max_tokens": max_tokens, "temperature": 0}, timeout=600)
        finished.append((name, status, body))

    before = request(health)[1]["batches"]
    long = threading.Thread(target=ask, args=("long", CONTEXT - 64))
    long.start()
    for _ in range(600):  # until the long request's batch is running
        if request(health)[1]["batches"] > before:
            break
        time.sleep(0.05)
    for _ in range(3):
        ask("short", 4)
    long.join(600)
    assert [name for name, _, _ in finished] == ["short", "short", "short", "long"], finished
    assert all(status == 200 for _, status, _ in finished)
    long_body = finished[-1][2]
    # It really was long: it ran to max_tokens rather than stopping early at an end token.
    assert long_body["choices"][0]["finish_reason"] == "length"
    assert long_body["usage"]["completion_tokens"] == CONTEXT - 64
