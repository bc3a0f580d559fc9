"""`still serve --choices`: constrained choice. Every chat reply is the label the model finds likeliest
after the prompt (the same log-likelihoods rank classification computes), streamed or not; bad
``--choices`` values exit 2 before any model loads."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator

import httpx
import pytest
from click.testing import CliRunner

from stillhouse.kernel.cli import build_cli
from stillhouse.kernel.plugins import get_host
from stillhouse.plugins.students.choices import score_choices
from stillhouse.plugins.teachers.batching import BatchingGenerator
from stillhouse.plugins.teachers.serve import build_app, prompt_counter

LABELS = ["entailment", "neutral", "contradiction"]


@pytest.fixture(scope="module")
def choosing_server(tiny_model_dir) -> Iterator[tuple[str, object, object]]:
    from aiohttp import web

    from stillhouse.plugins.hf_models import load_causal_lm

    model, tokenizer = load_causal_lm(str(tiny_model_dir), device="cpu")
    batcher = BatchingGenerator(model, tokenizer, max_batch=2)
    app = build_app(batcher, "tiny", count_tokens=prompt_counter(tokenizer), choices=LABELS)
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(app, access_log=None)
    loop.run_until_complete(runner.setup())
    loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", 0).start())
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}/v1", model, tokenizer
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
    loop.run_until_complete(runner.cleanup())
    batcher.close()


def test_every_reply_is_the_likeliest_label(choosing_server) -> None:
    api_base, model, tokenizer = choosing_server
    for text in ("Premise: a man plays guitar. Hypothesis: a man makes music.", "Premise: it rains. Hypothesis: dry."):
        messages = [{"role": "user", "content": text}]
        body = httpx.post(
            f"{api_base}/chat/completions", json={"model": "tiny", "messages": messages, "n": 2}, timeout=60
        ).json()
        (expected,) = score_choices(model, tokenizer, [messages], LABELS, batch_size=1)
        best = LABELS[max(range(3), key=expected.__getitem__)]
        assert [c["message"]["content"] for c in body["choices"]] == [best, best]
        assert body["choices"][0]["finish_reason"] == "stop"
        assert list(body["choice_logprobs"]) == LABELS
        assert list(body["choice_logprobs"].values()) == pytest.approx(expected, abs=1e-4)
        assert body["usage"]["prompt_tokens"] > 0 and body["usage"]["completion_tokens"] > 0
        streamed = []
        with httpx.stream(
            "POST", f"{api_base}/chat/completions", json={"model": "tiny", "messages": messages, "stream": True}, timeout=60
        ) as response:
            for line in response.iter_lines():
                if line.startswith("data: ") and line != "data: [DONE]":
                    choices = json.loads(line[len("data: ") :])["choices"]
                    streamed += [c["delta"].get("content") or "" for c in choices]
        assert "".join(streamed) == best


@pytest.mark.parametrize("value", ["entailment", "a,,b", "yes,yes"])
def test_bad_choices_exit_2_before_loading_a_model(value: str) -> None:
    result = CliRunner().invoke(build_cli(get_host()), ["serve", "no/such-model", "--choices", value])
    assert result.exit_code == 2, result.output
    assert "--choices" in result.output and "Traceback" not in result.output
