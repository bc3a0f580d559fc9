"""`still serve`'s app over real HTTP: streaming in OpenAI's format (read by the openai client),
the bearer API key and one access-log line per request. The app runs in this process on a thread,
over the tiny model, so the test needs no second torch import."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import httpx
import pytest
from click.testing import CliRunner

from stillhouse.plugins.teachers.batching import BatchingGenerator
from stillhouse.plugins.teachers.serve import build_app

KEY = "sk-test-0123456789"


@pytest.fixture(scope="module")
def server(tiny_model_dir) -> Iterator[tuple[str, list[str]]]:
    from aiohttp import web

    from stillhouse.plugins.hf_models import load_causal_lm

    model, tokenizer = load_causal_lm(str(tiny_model_dir), device="cpu")
    batcher = BatchingGenerator(model, tokenizer, max_batch=4)
    lines: list[str] = []
    app = build_app(batcher, "tiny", api_key=KEY, log=lines.append)
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(app, access_log=None)
    loop.run_until_complete(runner.setup())
    loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", 0).start())
    port = runner.addresses[0][1]
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}/v1", lines
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
    loop.run_until_complete(runner.cleanup())
    batcher.close()


def test_streamed_answer_matches_the_plain_one(server):
    from openai import OpenAI

    api_base, lines = server
    client = OpenAI(base_url=api_base, api_key=KEY)
    messages = [{"role": "user", "content": "hello there"}]
    plain = client.chat.completions.create(model="tiny", messages=messages, max_tokens=6, temperature=0)
    chunks = list(
        client.chat.completions.create(
            model="tiny", messages=messages, max_tokens=6, temperature=0, stream=True, stream_options={"include_usage": True}
        )
    )
    assert {c.object for c in chunks} == {"chat.completion.chunk"}
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == plain.choices[0].message.content  # greedy (the tiny random model's text may be blank): the same answer, delivered in chunks
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == plain.choices[0].finish_reason
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == plain.usage.completion_tokens
    logged = [line for line in lines if '"POST /v1/chat/completions" 200' in line]
    assert len(logged) >= 2 and f"completion={plain.usage.completion_tokens}" in logged[-1]


def test_litellm_streams_from_still_serve(server):
    """The way a Stillhouse teacher or `still eval` calls an OpenAI-compatible server: litellm, openai/<name>."""
    import litellm

    api_base, _ = server
    messages = [{"role": "user", "content": "tell me"}]
    kwargs = {"model": "openai/tiny", "api_base": api_base, "api_key": KEY, "messages": messages, "max_tokens": 5, "temperature": 0}
    plain = litellm.completion(**kwargs)
    chunks = list(litellm.completion(**kwargs, stream=True))
    streamed = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    assert streamed == plain.choices[0].message.content and plain.usage.completion_tokens > 0
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == [plain.choices[0].finish_reason]


def test_the_api_key_is_required_on_v1_only(server):
    api_base, lines = server
    body = {"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}
    missing = httpx.post(f"{api_base}/chat/completions", json=body, timeout=30)
    wrong = httpx.get(f"{api_base}/models", headers={"Authorization": "Bearer nope"}, timeout=30)
    assert missing.status_code == 401 and missing.json()["error"]["code"] == "invalid_api_key"
    assert wrong.status_code == 401 and "incorrect" in wrong.json()["error"]["message"]
    assert httpx.get(f"{api_base}/models", headers={"Authorization": f"Bearer {KEY}"}, timeout=30).json()["data"][0]["id"] == "tiny"
    assert httpx.get(api_base.removesuffix("/v1") + "/health", timeout=30).status_code == 200
    assert any('"GET /v1/models" 401' in line for line in lines) and KEY not in "".join(lines)


def test_streaming_with_logprobs_is_refused(server):
    api_base, _ = server
    body = {"messages": [{"role": "user", "content": "hi"}], "stream": True, "logprobs": True}
    answer = httpx.post(f"{api_base}/chat/completions", json=body, headers={"Authorization": f"Bearer {KEY}"}, timeout=30)
    assert answer.status_code == 400 and "stream=false" in answer.json()["error"]["message"]


def test_api_key_env_must_be_set(make_host, monkeypatch, tiny_model_dir):
    from stillhouse.kernel.cli import build_cli

    monkeypatch.delenv("STILL_TEST_KEY", raising=False)
    result = CliRunner().invoke(build_cli(make_host()), ["serve", str(tiny_model_dir), "--api-key-env", "STILL_TEST_KEY"])
    assert result.exit_code == 2 and "STILL_TEST_KEY" in result.output


def test_chunks_carry_each_choice_text_then_its_finish_and_the_usage():
    from stillhouse.plugins.teachers.openai_format import ChoiceOut, chat_chunks

    chunks = chat_chunks("m", [ChoiceOut("Hello there.", "stop"), ChoiceOut("Hi", "length")], 7, 5, include_usage=True)
    per_choice = {i: [c["choices"][0] for c in chunks if c["choices"] and c["choices"][0]["index"] == i] for i in (0, 1)}
    assert "".join(d["delta"].get("content", "") for d in per_choice[0]) == "Hello there."
    assert per_choice[0][0]["delta"]["role"] == "assistant" and per_choice[1][-1]["finish_reason"] == "length"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"] == {"prompt_tokens": 7, "completion_tokens": 5, "total_tokens": 12}
    assert len({c["id"] for c in chunks}) == 1 and {c["object"] for c in chunks} == {"chat.completion.chunk"}
