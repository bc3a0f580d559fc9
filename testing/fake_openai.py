"""A scriptable OpenAI-compatible server for tests, benchmarks and offline demos.

It answers ``/v1/chat/completions`` deterministically (``"Answer: <last user message>"``) after a
fixed latency, and can misbehave on purpose:

- ``fault_rate``: that share of requests fails with one of ``faults`` — HTTP 500, HTTP 429 (with
  ``Retry-After``), or ``timeout`` (the answer is held back ``hang_s`` seconds, past a client's
  timeout). Which attempt fails is a pure function of (seed, prompt, attempt number), so a test is
  reproducible whatever the arrival order.
- markers in the last user message: ``[[malformed]]`` answers 200 with a body that is not JSON,
  ``[[empty]]`` answers an empty completion, ``[[fail:CODE]]`` always answers HTTP CODE.
- ``api_key``: when set, requests without ``Authorization: Bearer <api_key>`` get 401.
- ``echo_auth``: error messages repeat the request's ``Authorization`` header, as careless
  providers do (for the tests that a key never reaches disk or output).
- ``oracle``: a :class:`stillhouse.testing.oracle.Oracle` answers the prompts of a labelled file
  (nli, math, qa) right with probability p, in prose ("Reasoning: ... Answer: ..."); other prompts
  get the plain answer. From the command line: ``--oracle FILE --oracle-task nli --oracle-p 0.9``.
- ``models``: several teacher "models" in one server, each with its own oracle (or None for the
  echo answers), picked by the request's ``model`` (``{"cheap": Oracle(..., p=0.7, seed=1),
  "strong": Oracle(..., p=0.9, seed=2)}``; different seeds make their errors independent; a function
  ``(messages, index) -> reply`` scripts a model instead). Requests
  are counted per model (``stats.by_model``, ``stats.answered_by_model``).
- judge prompts (the kernel's judge system prompt, :data:`stillhouse.kernel.teacher_ensemble.JUDGE_MARKER`):
  with an oracle the judge scores an answer the task's verifier accepts against the gold row 9, any
  other 2; without one, a score drawn from the prompt. Always ``Score: N\nReason: ...``. Pairwise
  prompts (:data:`~stillhouse.kernel.teacher_ensemble.PAIRWISE_MARKER`, two answers A and B): with an
  oracle the answer the verifier accepts wins (a tie when both or neither do); without one a verdict
  drawn from the prompt. Always ``Winner: A|B|tie\nReason: ...``.

It counts what it did (``stats``: requests, answered per prompt, faults) so tests can check at the
server that nothing was paid for twice. Run it in a thread (:class:`FakeOpenAIServer`) or as a
process: ``python -m stillhouse.testing.fake_openai --port 0 --latency 0.05`` prints
``READY <port>``; ``GET /stats`` returns the counters.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from stillhouse.plugins.teachers.openai_format import (
    ChoiceOut,
    RequestError,
    chat_completion,
    error_body,
    model_list,
    parse_chat_request,
)


@dataclass
class FakeBehaviour:
    latency_s: float = 0.0
    fault_rate: float = 0.0
    faults: tuple[str, ...] = ("500", "429", "timeout")
    hang_s: float = 2.0
    seed: int = 0
    api_key: str | None = None
    model_ids: tuple[str, ...] = ("fake-teacher",)
    echo_auth: bool = False
    oracle: Any = None
    """A :class:`stillhouse.testing.oracle.Oracle`, or None for the plain echo answers."""
    models: dict[str, Any] = field(default_factory=dict)
    """Model id -> its Oracle, None (echo answers) or a function (messages, choice index) -> reply:
    several teachers of known accuracy, or scripted ones, behind one server."""


@dataclass
class FakeStats:
    requests: int = 0
    answered: Counter[str] = field(default_factory=Counter)
    """Successful (HTTP 200, well-formed) answers per prompt (the last user message)."""
    faults: Counter[str] = field(default_factory=Counter)
    seen: Counter[str] = field(default_factory=Counter)
    """Requests per prompt, whatever their outcome."""
    last_params: dict[str, Any] = field(default_factory=dict)
    """Sampling parameters of the latest request (messages left out)."""
    inflight: int = 0
    max_inflight: int = 0
    by_model: Counter[str] = field(default_factory=Counter)
    """Requests per model named in the request."""
    answered_by_model: dict[str, Counter[str]] = field(default_factory=dict)
    """Successful answers per model, per prompt (the last user message)."""

    @property
    def answered_total(self) -> int:
        return sum(self.answered.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "answered": dict(self.answered),
            "faults": dict(self.faults),
            "seen": dict(self.seen),
            "max_inflight": self.max_inflight,
            "by_model": dict(self.by_model),
        }


def _last_user(messages: list[dict[str, str]]) -> str:
    for message in reversed(messages):
        if message["role"] == "user":
            return message["content"]
    return messages[-1]["content"]


def fake_answer(prompt: str, index: int = 0) -> str:
    """The deterministic answer the server gives to ``prompt`` (choice ``index``)."""
    return f"Answer: {prompt}" + (f" #{index}" if index else "")


class FakeOpenAIApp:
    """The aiohttp application and its counters (one instance per server)."""

    def __init__(self, behaviour: FakeBehaviour | None = None) -> None:
        self.behaviour = behaviour or FakeBehaviour()
        self.stats = FakeStats()
        self._attempts: Counter[str] = Counter()

    def build(self) -> Any:
        from aiohttp import web

        app = web.Application()
        app.router.add_post("/v1/chat/completions", self.chat)
        app.router.add_get("/v1/models", self.models)
        app.router.add_get("/stats", self.stats_handler)
        return app

    def _fault_for(self, prompt: str) -> str | None:
        b = self.behaviour
        attempt = self._attempts[prompt]
        self._attempts[prompt] += 1
        if b.fault_rate <= 0 or not b.faults:
            return None
        digest = hashlib.sha256(f"{b.seed}\0{prompt}\0{attempt}".encode()).digest()
        draw = int.from_bytes(digest[:8], "big") / 2**64
        if draw >= b.fault_rate:
            return None
        return b.faults[int.from_bytes(digest[8:12], "big") % len(b.faults)]

    async def chat(self, request: Any) -> Any:
        stats = self.stats
        stats.requests += 1
        stats.inflight += 1
        stats.max_inflight = max(stats.max_inflight, stats.inflight)
        try:
            return await self._chat(request)
        finally:
            stats.inflight -= 1

    async def _chat(self, request: Any) -> Any:
        from aiohttp import web

        b = self.behaviour
        echo = f" (you sent Authorization: {request.headers.get('Authorization')})" if b.echo_auth else ""
        if b.api_key is not None and request.headers.get("Authorization") != f"Bearer {b.api_key}":
            self.stats.faults["401"] += 1
            return web.json_response(error_body("invalid api key" + echo, "invalid_api_key", 401), status=401)
        try:
            body = await request.json()
            params = parse_chat_request(body)
        except (RequestError, ValueError) as exc:
            return web.json_response(error_body(str(exc)), status=400)
        model = str(body.get("model") or "")
        if b.models and model not in b.models:
            return web.json_response(error_body(f"unknown model '{model}'", "model_not_found", 404), status=404)
        prompt = _last_user(params.messages)
        self.stats.seen[prompt] += 1
        self.stats.by_model[model] += 1
        self.stats.last_params = {k: v for k, v in vars(params).items() if k != "messages"}
        if b.latency_s:
            await asyncio.sleep(b.latency_s)
        if "[[fail:" in prompt:
            code = int(prompt.split("[[fail:", 1)[1].split("]]", 1)[0])
            self.stats.faults[str(code)] += 1
            return web.json_response(error_body(f"scripted failure {code}{echo}", "server_error", code), status=code)
        fault = self._fault_for(prompt)
        if fault == "timeout":
            self.stats.faults["timeout"] += 1
            await asyncio.sleep(b.hang_s)
            return web.json_response(error_body("too late", "server_error", 504), status=504)
        if fault is not None:
            self.stats.faults[fault] += 1
            headers = {"Retry-After": "0"} if fault == "429" else {}
            return web.json_response(
                error_body(f"injected {fault}", "server_error", int(fault)), status=int(fault), headers=headers
            )
        if "[[malformed]]" in prompt:
            self.stats.faults["malformed"] += 1
            return web.Response(text='{"id": "broken", "choices": [', content_type="application/json")
        texts = [
            "" if "[[empty]]" in prompt else self._answer(params.messages, prompt, i, model) for i in range(params.n)
        ]
        choices = [ChoiceOut(text[: params.max_tokens * 8], "stop", self._logprobs(text, params)) for text in texts]
        prompt_tokens = sum(len(m["content"].split()) + 3 for m in params.messages)
        completion_tokens = sum(len(t.split()) for t in texts)
        if all(texts):
            self.stats.answered[prompt] += 1
            self.stats.answered_by_model.setdefault(model, Counter())[prompt] += 1
        name = model if model in b.models else b.model_ids[0]
        return web.json_response(chat_completion(name, choices, prompt_tokens, completion_tokens))

    def _answer(self, messages: list[dict[str, str]], prompt: str, index: int, model: str = "") -> str:
        oracle = self.behaviour.models.get(model, self.behaviour.oracle)
        if callable(oracle):  # a scripted model: (messages, choice index) -> reply
            return str(oracle(messages, index))
        from stillhouse.kernel.teacher_ensemble import JUDGE_MARKER, PAIRWISE_MARKER

        if any(m["role"] == "system" and PAIRWISE_MARKER in m["content"] for m in messages):
            from stillhouse.testing.oracle import pairwise_reply

            return pairwise_reply(oracle, prompt)
        if any(m["role"] == "system" and JUDGE_MARKER in m["content"] for m in messages):
            from stillhouse.testing.oracle import judge_reply

            return judge_reply(oracle, prompt)
        if oracle is not None:
            from stillhouse.testing.oracle import oracle_reply

            reply = oracle_reply(oracle, messages, index)
            if reply is not None:
                return reply
        return fake_answer(prompt, index)

    @staticmethod
    def _logprobs(text: str, params: Any) -> list[tuple[str, float, list[tuple[str, float]]]] | None:
        if not params.logprobs:
            return None
        out = []
        for i, word in enumerate(text.split()):
            top = [(word, -0.1 * (i + 1))] + [(f"alt{k}", -1.0 - k) for k in range(max(0, params.top_logprobs - 1))]
            out.append((word, -0.1 * (i + 1), top[: params.top_logprobs]))
        return out

    async def models(self, request: Any) -> Any:
        from aiohttp import web

        return web.json_response(model_list([*self.behaviour.model_ids, *self.behaviour.models]))

    async def stats_handler(self, request: Any) -> Any:
        from aiohttp import web

        return web.json_response(self.stats.as_dict())


class FakeOpenAIServer:
    """:class:`FakeOpenAIApp` served on 127.0.0.1 from a background thread (a context manager)."""

    def __init__(self, behaviour: FakeBehaviour | None = None, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.app = FakeOpenAIApp(behaviour)
        self.host = host
        self.port = port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: Any = None

    @property
    def behaviour(self) -> FakeBehaviour:
        return self.app.behaviour

    @property
    def stats(self) -> FakeStats:
        return self.app.stats

    @property
    def url(self) -> str:
        """The OpenAI base URL (``http://127.0.0.1:PORT/v1``)."""
        return f"http://{self.host}:{self.port}/v1"

    def start(self) -> FakeOpenAIServer:
        ready = threading.Event()
        errors: list[BaseException] = []

        def serve() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                loop.run_until_complete(self._start_site())
            except BaseException as exc:  # reported to the starting thread
                errors.append(exc)
                ready.set()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._runner.cleanup())
            loop.close()

        self._thread = threading.Thread(target=serve, name="fake-openai", daemon=True)
        self._thread.start()
        ready.wait(30)
        if errors:
            raise errors[0]
        return self

    async def _start_site(self) -> None:
        from aiohttp import web

        self._runner = web.AppRunner(self.app.build(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = self._runner.addresses[0][1]

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._loop = None

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> None:
    """Serve in the foreground; prints ``READY <port>`` once listening."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before each answer")
    parser.add_argument("--fault-rate", type=float, default=0.0)
    parser.add_argument("--hang", type=float, default=2.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--oracle", metavar="FILE", help="answer this labelled file's prompts as an oracle")
    parser.add_argument("--oracle-task", default="nli", help="task of the oracle file: nli, math or qa")
    parser.add_argument("--oracle-p", type=float, default=0.9, help="probability that the oracle is right")
    parser.add_argument(
        "--model",
        action="append",
        default=[],
        metavar="NAME=P",
        help="with --oracle: serve model NAME as an oracle right with probability P (its own seed); repeatable",
    )
    args = parser.parse_args(argv)
    oracle = None
    models: dict[str, Any] = {}
    if args.oracle:
        from stillhouse.testing.oracle import Oracle

        oracle = Oracle(args.oracle, args.oracle_task, p=args.oracle_p, seed=args.seed)
        for i, spec in enumerate(args.model, start=1):
            name, _, p = spec.partition("=")
            models[name] = Oracle(args.oracle, args.oracle_task, p=float(p or args.oracle_p), seed=args.seed + i)
    server = FakeOpenAIServer(
        FakeBehaviour(
            latency_s=args.latency,
            fault_rate=args.fault_rate,
            hang_s=args.hang,
            seed=args.seed,
            oracle=oracle,
            models=models,
        ),
        host=args.host,
        port=args.port,
    ).start()
    print(f"READY {server.port}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    main()
