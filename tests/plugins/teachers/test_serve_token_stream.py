"""`still serve` streams token by token: the first pieces of a reply reach the client while the
model is still generating it. Shown by order, not by timing: a forward hook holds generation at a
late decoding step until the client has received two content chunks (or a generous timeout passes,
which only a buffered stream would need), and each chunk's arrival is stamped with the number of
forward passes run so far."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator

import httpx
import pytest

from stillhouse.plugins.teachers.batching import BatchingGenerator
from stillhouse.plugins.teachers.serve import build_app
from stillhouse.plugins.teachers.token_stream import releasable

TOKENS = 24
HOLD_AT = 18
"""The forward pass (1 = the prompt) that waits for the client's second chunk."""
DEADLOCK_GUARD_S = 120
"""Not a timing assertion: how long the held step waits before giving up (a buffered stream)."""


class ForwardCounter:
    def __init__(self) -> None:
        self.count = 0
        self.armed = False
        self.two_chunks = threading.Event()

    def __call__(self, module, args, output) -> None:
        self.count += 1
        if self.armed and self.count == HOLD_AT:
            self.two_chunks.wait(DEADLOCK_GUARD_S)


@pytest.fixture(scope="module")
def lively_server(tiny_model_dir) -> Iterator[tuple[str, ForwardCounter]]:
    """The tiny model with its weights scaled ×10 (so it writes varied words, not one repeated
    token) behind build_app, on a thread of this process."""
    import torch
    from aiohttp import web

    from stillhouse.plugins.hf_models import load_causal_lm

    model, tokenizer = load_causal_lm(str(tiny_model_dir), device="cpu")
    with torch.no_grad():
        for weight in model.parameters():
            if weight.dim() == 2:
                weight.mul_(10)
    counter = ForwardCounter()
    model.register_forward_hook(counter)
    batcher = BatchingGenerator(model, tokenizer, max_batch=2)
    app = build_app(batcher, "lively")
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(app, access_log=None)
    loop.run_until_complete(runner.setup())
    loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", 0).start())
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}/v1", counter
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
    loop.run_until_complete(runner.cleanup())
    batcher.close()


def test_chunks_arrive_while_the_reply_is_still_being_generated(lively_server):
    api_base, counter = lively_server
    body = {"model": "lively", "messages": [{"role": "user", "content": "Premise: a man plays guitar."}], "max_tokens": TOKENS, "temperature": 0}
    plain = httpx.post(f"{api_base}/chat/completions", json=body, timeout=120).json()

    counter.count, counter.armed = 0, True
    arrivals: list[tuple[str, int]] = []  # (content, forward passes run when it arrived)
    with httpx.stream("POST", f"{api_base}/chat/completions", json={**body, "stream": True}, timeout=300) as response:
        for line in response.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            choices = json.loads(line[len("data: ") :])["choices"]
            content = choices[0]["delta"].get("content") if choices else None
            if content:
                arrivals.append((content, counter.count))
                if len(arrivals) == 2:
                    counter.two_chunks.set()
    counter.armed = False
    total = counter.count

    assert "".join(content for content, _ in arrivals) == plain["choices"][0]["message"]["content"]
    assert total >= HOLD_AT  # generation went past the held step
    early = [content for content, seen in arrivals if seen < total]
    assert len(early) >= 2, f"chunks arrived only as generation ended: {arrivals} (total {total} forwards)"


def test_releasable_holds_back_whitespace_and_a_possible_stop_string():
    assert releasable("Hello world ", ()) == len("Hello world")
    assert releasable("Hello wor", ("world",)) == len("Hello ")
    assert releasable("Hello wx", ("world",)) == len("Hello wx")
