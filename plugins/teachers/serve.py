"""``still serve``: an OpenAI-compatible HTTP server over a local transformers model.

``POST /v1/chat/completions`` (messages, n, max_tokens / max_completion_tokens, temperature, top_p,
stop, seed, logprobs / top_logprobs; usage in every response; ``stream=true`` with ``n = 1``
sends server-sent ``chat.completion.chunk`` events token by token as the model generates them
(:mod:`.token_stream`; ``n > 1`` streams once the batch has generated the answers), ``POST /v1/completions`` with token-id prompts and
``prompt_logprobs`` (scoring given tokens, vLLM style: see :mod:`.prompt_logprobs`; what an
on-policy trainer needs from a served teacher), ``GET /v1/models`` and ``GET /health``. One
access-log line per request; with an API key every ``/v1`` request needs ``Authorization: Bearer
KEY`` (401 otherwise). Concurrent requests are answered in batches (:mod:`.batching`), in lanes by
``max_tokens`` so that a long request never holds up short ones (:class:`LanedGenerator`). Serve a
distilled student with it and call it from any OpenAI client, or from litellm as
``openai/<name>`` with ``api_base = "http://HOST:PORT/v1"``.
"""

from __future__ import annotations

import asyncio
import copy
import hmac
import json
import time
from collections.abc import Callable, Sequence
from typing import Any

from stillhouse.kernel.interfaces import Message
from stillhouse.plugins.hf_models import GenerationOutput
from stillhouse.plugins.teachers.batching import BatchingGenerator, BatchStats, GenParams
from stillhouse.plugins.teachers.config import LOCAL_PREFIX
from stillhouse.plugins.teachers.openai_format import (
    ChoiceOut,
    RequestError,
    chat_chunks,
    chat_completion,
    chunk_base,
    delta_chunk,
    error_body,
    model_list,
    parse_chat_request,
    usage_chunk,
)
from stillhouse.plugins.teachers.prompt_logprobs import PromptScorer, parse_score_request, score_response
from stillhouse.plugins.teachers.token_stream import StreamResult, TokenStreamer

LANE_LIMITS = (64, 512)
"""Upper max_tokens of each lane but the last (which takes the rest)."""


class LanedGenerator:
    """Batching in lanes by ``max_tokens``, each lane with its own batcher, thread and tokenizer.

    One batcher runs one ``generate`` call at a time, and a batch runs until its longest request is
    done: a 3000-token request kept 4-token ones waiting ~22 s. Lanes are the simplest sound fix:
    requests of very different lengths never share a batch or a queue, and a short lane computes
    while a long one is busy (the lanes share the cores, so a long request slows down a little
    instead of a short one waiting for it). Step-level scheduling (continuous batching) would also
    do it, but needs a KV-cache-aware generation loop. Each lane gets its own copy of the tokenizer:
    generate_chat changes its padding side, and fast tokenizers refuse concurrent mutation.
    torch's seed is process-wide: a seeded sampling request is reproducible while no sampling
    request runs in another lane (OpenAI documents ``seed`` as best effort, too).
    """

    def __init__(self, model: Any, tokenizer: Any, *, max_batch: int = 8, limits: Sequence[int] = LANE_LIMITS) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.limits = tuple(limits)
        self.lanes = [
            BatchingGenerator(model, tokenizer if i == 0 else copy.deepcopy(tokenizer), max_batch=max_batch)
            for i in range(len(self.limits) + 1)
        ]

    def lane_for(self, max_new_tokens: int) -> BatchingGenerator:
        index = next((i for i, limit in enumerate(self.limits) if max_new_tokens <= limit), len(self.limits))
        return self.lanes[index]

    async def generate(self, messages: list[Message], params: GenParams, n: int = 1) -> list[GenerationOutput]:
        return await self.lane_for(params.max_new_tokens).generate(messages, params, n)

    @property
    def stats(self) -> BatchStats:
        total = BatchStats()
        for lane in self.lanes:
            total.batches += lane.stats.batches
            total.sequences += lane.stats.sequences
            total.largest = max(total.largest, lane.stats.largest)
            total.sizes += lane.stats.sizes
        return total

    def close(self) -> None:
        for lane in self.lanes:
            lane.close()


def context_length(model: Any) -> int | None:
    """The most tokens (prompt + completion) the model's positions cover, if its config says."""
    config = getattr(model, "config", None)
    for name in ("max_position_embeddings", "n_positions", "n_ctx", "max_sequence_length"):
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


def prompt_counter(tokenizer: Any) -> Callable[[list[Message]], int]:
    """Counts a chat prompt's tokens as generation will see them, on a private tokenizer copy
    (the batchers use theirs on other threads)."""
    own = copy.deepcopy(tokenizer)

    def count(messages: list[Message]) -> int:
        # Rendered, then encoded without special tokens: exactly what generate_chat feeds the model.
        text = own.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return len(own(text, add_special_tokens=False)["input_ids"])

    return count


def build_app(
    batcher: BatchingGenerator | LanedGenerator,
    model_id: str,
    *,
    context: int | None = None,
    count_tokens: Callable[[list[Message]], int] | None = None,
    api_key: str | None = None,
    log: Callable[[str], None] | None = None,
    scorer: PromptScorer | None = None,
    streamer: TokenStreamer | None = None,
    choices: Sequence[str] | None = None,
) -> Any:
    """The aiohttp app. With ``context`` and ``count_tokens``, a request whose prompt plus
    ``max_tokens`` exceeds the context is refused (400), as OpenAI's API does, instead of running
    past the positions the model was trained on. With ``api_key``, ``/v1`` requests without
    ``Authorization: Bearer <api_key>`` get 401 (``/health`` stays open for probes). ``log`` gets
    one access-log line per request: client, method, path, status, seconds, tokens. ``stream=true``
    requests (n = 1) are streamed token by token through ``streamer`` (default: one over the
    batcher's model and tokenizer). With ``choices`` (constrained choice) every chat request is
    answered with the most likely of those replies by log-likelihood after the prompt (rank
    classification), never with free text; the response also carries ``choice_logprobs``."""
    from aiohttp import web

    streamer = streamer or TokenStreamer(batcher.model, batcher.tokenizer)
    constrained = list(choices) if choices else None

    async def stream_tokens(request: web.Request, params: Any, gen: GenParams) -> web.StreamResponse:
        """Each piece of the reply as its own chunk, written as soon as it is generated."""
        stream = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await stream.prepare(request)
        base, result = chunk_base(model_id), StreamResult()

        async def send(chunk: dict[str, Any]) -> None:
            await stream.write(f"data: {json.dumps(chunk)}\n\n".encode())

        await send(delta_chunk(base, {"role": "assistant", "content": ""}))
        try:
            async for piece in streamer.stream(params.messages, gen, result):
                await send(delta_chunk(base, {"content": piece}))
        except Exception as exc:  # headers are sent: the failure goes down the stream, as OpenAI's does
            await send(error_body(f"generation failed: {exc}", "server_error", 500))
            await stream.write_eof()
            return stream
        request["tokens"] = (result.prompt_tokens, result.completion_tokens)
        await send(delta_chunk(base, {}, result.finish_reason))
        if params.include_usage:
            await send(usage_chunk(base, result.prompt_tokens, result.completion_tokens))
        await stream.write(b"data: [DONE]\n\n")
        await stream.write_eof()
        return stream

    @web.middleware
    async def access_log(request: web.Request, handler: Callable[[web.Request], Any]) -> web.StreamResponse:
        started = time.perf_counter()
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        finally:
            if log is not None:
                tokens = request.get("tokens")
                extra = f" prompt={tokens[0]} completion={tokens[1]}" if tokens else ""
                log(f'{request.remote} "{request.method} {request.path}" {status} {time.perf_counter() - started:.3f}s{extra}')

    @web.middleware
    async def bearer_auth(request: web.Request, handler: Callable[[web.Request], Any]) -> web.StreamResponse:
        if api_key is not None and request.path.startswith("/v1"):
            given = request.headers.get("Authorization", "")
            scheme, _, token = given.partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), api_key.encode()):
                message = "missing API key: send Authorization: Bearer <key>" if not given else "incorrect API key"
                return web.json_response(error_body(message, "invalid_request_error", "invalid_api_key"), status=401)
        return await handler(request)

    @web.middleware
    async def json_errors(request: web.Request, handler: Callable[[web.Request], Any]) -> web.StreamResponse:
        # OpenAI clients parse {"error": {...}} bodies; aiohttp's own 404/405 pages are plain text.
        try:
            return await handler(request)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            kind = "not_found_error" if exc.status == 404 else "invalid_request_error"
            message = f"{request.method} {request.path}: {exc.reason}"
            allow = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
            return web.json_response(error_body(message, kind, exc.status), status=exc.status, headers=allow)

    async def chat(request: web.Request) -> web.StreamResponse:
        try:
            params = parse_chat_request(await request.json(), streaming=True)
            if params.stream and params.logprobs:
                raise RequestError("logprobs are not streamed by this server; send stream=false for logprobs")
        except (RequestError, ValueError) as exc:
            return web.json_response(error_body(str(exc)), status=400)
        if context is not None and count_tokens is not None:
            prompt = count_tokens(params.messages)
            if prompt + params.max_tokens > context:
                message = (
                    f"This model's maximum context length is {context} tokens. However, you requested "
                    f"{prompt + params.max_tokens} tokens ({prompt} in the messages, {params.max_tokens} in "
                    "the completion). Please reduce the length of the messages or the completion."
                )
                return web.json_response(error_body(message, code="context_length_exceeded"), status=400)
        if constrained:
            return await choose(request, params, constrained)
        gen = GenParams(
            max_new_tokens=params.max_tokens,
            temperature=params.temperature,
            top_p=params.top_p,
            stop=tuple(params.stop or ()),
            seed=params.seed,
            top_logprobs=params.top_logprobs if params.logprobs else None,
        )
        if params.stream and params.n == 1:
            return await stream_tokens(request, params, gen)
        try:
            outputs = await batcher.generate(params.messages, gen, params.n)
        except Exception as exc:  # a generation failure is the server's fault: 500, and keep serving
            return web.json_response(error_body(f"generation failed: {exc}", "server_error", 500), status=500)
        choices = [ChoiceOut(o.text, o.finish_reason, o.logprobs) for o in outputs]
        prompt_tokens = outputs[0].prompt_tokens if outputs else 0
        completion_tokens = sum(o.completion_tokens for o in outputs)
        request["tokens"] = (prompt_tokens, completion_tokens)
        if not params.stream:
            return web.json_response(chat_completion(model_id, choices, prompt_tokens, completion_tokens))
        stream = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await stream.prepare(request)
        for chunk in chat_chunks(model_id, choices, prompt_tokens, completion_tokens, include_usage=params.include_usage):
            await stream.write(f"data: {json.dumps(chunk)}\n\n".encode())
        await stream.write(b"data: [DONE]\n\n")
        await stream.write_eof()
        return stream

    async def choose(request: web.Request, params: Any, labels: list[str]) -> web.StreamResponse:
        """Constrained choice: the label the model finds likeliest after this prompt."""
        from stillhouse.plugins.students.choices import score_choices

        try:
            (scores,) = await asyncio.to_thread(
                score_choices, batcher.model, batcher.tokenizer, [params.messages], labels, batch_size=1
            )
        except Exception as exc:  # the server's fault: 500, and keep serving
            return web.json_response(error_body(f"scoring the choices failed: {exc}", "server_error", 500), status=500)
        label = labels[max(range(len(labels)), key=scores.__getitem__)]
        prompt_tokens = count_tokens(params.messages) if count_tokens is not None else 0
        completion_tokens = len(batcher.tokenizer(label, add_special_tokens=False)["input_ids"]) * params.n
        request["tokens"] = (prompt_tokens, completion_tokens)
        replies = [ChoiceOut(label, "stop", None)] * params.n
        if not params.stream:
            body = chat_completion(model_id, replies, prompt_tokens, completion_tokens)
            body["choice_logprobs"] = dict(zip(labels, scores, strict=True))
            return web.json_response(body)
        stream = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await stream.prepare(request)
        for chunk in chat_chunks(model_id, replies, prompt_tokens, completion_tokens, include_usage=params.include_usage):
            await stream.write(f"data: {json.dumps(chunk)}\n\n".encode())
        await stream.write(b"data: [DONE]\n\n")
        await stream.write_eof()
        return stream

    async def completions(request: web.Request) -> web.Response:
        if scorer is None:
            return web.json_response(error_body("this server does not score prompts"), status=400)
        try:
            prompts, k = parse_score_request(await request.json(), context=context)
        except (RequestError, ValueError) as exc:
            return web.json_response(error_body(str(exc)), status=400)
        scored = await asyncio.to_thread(scorer.score, prompts, k)
        return web.json_response(score_response(model_id, prompts, scored))

    async def models(request: web.Request) -> web.Response:
        return web.json_response(model_list([model_id]))

    async def health(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "model": model_id, "batches": batcher.stats.batches})

    app = web.Application(client_max_size=16 * 1024 * 1024, middlewares=[access_log, bearer_auth, json_errors])
    app.router.add_post("/v1/chat/completions", chat)
    app.router.add_post("/v1/completions", completions)
    app.router.add_get("/v1/models", models)
    app.router.add_get("/health", health)
    return app


def run_server(
    model: str,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    max_batch: int = 8,
    dtype: str = "auto",
    device: str = "auto",
    name: str | None = None,
    api_key: str | None = None,
    echo: Any = print,
    log: Callable[[str], None] | None = None,
    choices: Sequence[str] | None = None,
) -> None:
    """Load ``model`` and serve it until interrupted; ``echo`` gets the listening line, ``log``
    the access-log lines; ``api_key`` (when given) is required of every ``/v1`` request;
    ``choices``: constrained choice (see :func:`build_app`)."""
    from aiohttp import web

    from stillhouse.plugins.hf_models import load_causal_lm

    spec = model[len(LOCAL_PREFIX) :] if model.startswith(LOCAL_PREFIX) else model
    loaded, tokenizer = load_causal_lm(spec, dtype=dtype, device=device)
    model_id = name or spec

    async def main() -> None:
        batcher = LanedGenerator(loaded, tokenizer, max_batch=max_batch)
        app = build_app(
            batcher,
            model_id,
            context=context_length(loaded),
            count_tokens=prompt_counter(tokenizer),
            api_key=api_key,
            log=log,
            scorer=PromptScorer(loaded, tokenizer),
            choices=choices,
        )
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound = runner.addresses[0][1]
        echo(f"Serving {model_id} at http://{host}:{bound}/v1 (max batch {max_batch}); Ctrl-C stops")
        if choices:
            echo(f"constrained choice: every chat reply is one of {', '.join(choices)}")
        if api_key is None and host not in ("127.0.0.1", "localhost", "::1"):
            echo(f"warning: listening on {host} without an API key: anyone who reaches it can use it (--api-key-env NAME)")
        try:
            await asyncio.Event().wait()
        finally:
            await runner.cleanup()
            batcher.close()

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
