"""The teacher configs of examples/teachers/ (vLLM, Ollama, llama.cpp's server) are valid pipelines,
and each one's [teacher] table, pointed at `still serve` (the same OpenAI protocol), answers over
real HTTP through the litellm teacher.

litellm's native ``ollama_chat/`` provider calls Ollama's own ``/api/chat``, which `still serve`
does not speak: a small shim here turns /api/chat into an OpenAI request to it, so the provider's
request and response handling is exercised over HTTP too. Not covered: a real vLLM, Ollama or
llama-server process (none installs on this machine) and the older ``ollama/`` (/api/generate).
"""

from __future__ import annotations

import json
import threading
import tomllib
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from stillhouse.kernel.config import load_config
from stillhouse.kernel.plugins import get_host

from .helpers import by_id, collect, prompts

OLLAMA_OPTIONS = {"num_predict": "max_tokens", "temperature": "temperature", "top_p": "top_p", "seed": "seed", "stop": "stop"}

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "teachers"
CONFIGS = sorted(EXAMPLES.glob("*.toml"))
PROVIDERS = {"vllm": "hosted_vllm/", "ollama": "openai/", "llamacpp": "openai/"}


def test_every_server_example_is_a_valid_pipeline_with_its_server_endpoint():
    assert {p.stem for p in CONFIGS} == set(PROVIDERS)
    for path in CONFIGS:
        loaded = load_config(path, get_host())
        teacher = loaded.pipeline.teacher
        assert teacher.model.startswith(PROVIDERS[path.stem]), path.name
        assert teacher.api_base is not None and teacher.api_base.startswith("http://127.0.0.1:")  # type: ignore[attr-defined]
        assert teacher.api_base.endswith("/v1"), "the OpenAI protocol's base: litellm appends /chat/completions"  # type: ignore[attr-defined]


@pytest.mark.slow  # one `still serve` process for the session (torch and the tiny teacher load in it)
def test_each_server_config_answers_over_http_from_still_serve(openai_server, make_teacher):
    for path in CONFIGS:
        options = tomllib.loads(path.read_text())["teacher"]
        # the config's shape on this server; sampled, as test_serve does: a random tiny model's greedy
        # answer can be special tokens alone, which the teacher rightly counts as no answer
        options |= {"api_base": openai_server, "max_tokens": 8, "concurrency": 2, "temperature": 1.0, "seed": 3}
        teacher = make_teacher(**options)
        results = by_id(collect(teacher, prompts(3, prefix=path.stem)))
        assert len(results) == 3, path.name
        for result in results.values():
            assert result.ok, f"{path.name}: {result.error}"
            assert result.completions[0].text and result.prompt_tokens > 0, path.name
        if options.get("logprobs"):  # the vLLM example keeps the top log-probs for logit distillation
            tokens = results["s0"].completions[0].logprobs
            assert tokens, f"{path.name}: no token log-probabilities came back"
            assert all(len(t.top) == options["top_logprobs"] for t in tokens)
            assert all(t.logprob <= 0 for t in tokens)

    # litellm's native Ollama provider: Ollama's /api/chat, options as num_predict ...
    with ollama_chat_shim(openai_server) as ollama_base:
        teacher = make_teacher(model="ollama_chat/llama3.2", api_base=ollama_base, max_tokens=8, temperature=1.0, seed=3)
        results = by_id(collect(teacher, prompts(3, prefix="ollama_chat")))
    assert len(results) == 3 and all(r.ok for r in results.values()), [r.error for r in results.values()]
    assert all(0 < r.completion_tokens <= 8 and r.prompt_tokens > 0 for r in results.values()), "max_tokens went as num_predict"


@contextmanager
def ollama_chat_shim(api_base: str) -> Iterator[str]:
    """Ollama's ``POST /api/chat`` (non-streaming) in front of an OpenAI endpoint; yields its base URL."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            assert self.path == "/api/chat", self.path
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            assert body["stream"] is False
            request = {"model": body["model"], "messages": body["messages"]}
            request |= {ours: body["options"][theirs] for theirs, ours in OLLAMA_OPTIONS.items() if theirs in body["options"]}
            post = urllib.request.Request(api_base + "/chat/completions", json.dumps(request).encode(), {"Content-Type": "application/json"})
            with urllib.request.urlopen(post, timeout=60) as response:
                answer = json.loads(response.read())
            choice = answer["choices"][0]
            reply = {
                "model": body["model"],
                "message": {"role": "assistant", "content": choice["message"]["content"]},
                "done": True,
                "done_reason": choice["finish_reason"],
                "prompt_eval_count": answer["usage"]["prompt_tokens"],
                "eval_count": answer["usage"]["completion_tokens"],
            }
            data = json.dumps(reply).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
