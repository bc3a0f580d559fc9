"""``still serve``: an OpenAI-compatible HTTP server over a local transformers model.

``POST /v1/chat/completions`` (messages, n, max_tokens / max_completion_tokens, temperature, top_p,
stop, seed, logprobs / top_logprobs; usage in every response; no streaming), ``GET /v1/models``
and ``GET /health``. Concurrent requests are answered in batches (:mod:`.batching`). Serve a
distilled student with it and call it from any OpenAI client, or from litellm as
``openai/<name>`` with ``api_base = "http://HOST:PORT/v1"``.
"""

from __future__ import annotations

import asyncio
from typing import Any

from stillhouse.plugins.teachers.batching import BatchingGenerator, GenParams
from stillhouse.plugins.teachers.config import LOCAL_PREFIX
from stillhouse.plugins.teachers.openai_format import (
    ChoiceOut,
    RequestError,
    chat_completion,
    error_body,
    model_list,
    parse_chat_request,
)


def build_app(batcher: BatchingGenerator, model_id: str) -> Any:
    from aiohttp import web

    async def chat(request: web.Request) -> web.Response:
        try:
            params = parse_chat_request(await request.json())
        except (RequestError, ValueError) as exc:
            return web.json_response(error_body(str(exc)), status=400)
        gen = GenParams(
            max_new_tokens=params.max_tokens,
            temperature=params.temperature,
            top_p=params.top_p,
            stop=tuple(params.stop or ()),
            seed=params.seed,
            top_logprobs=params.top_logprobs if params.logprobs else None,
        )
        try:
            outputs = await batcher.generate(params.messages, gen, params.n)
        except Exception as exc:  # a generation failure is the server's fault: 500, and keep serving
            return web.json_response(error_body(f"generation failed: {exc}", "server_error", 500), status=500)
        choices = [ChoiceOut(o.text, o.finish_reason, o.logprobs) for o in outputs]
        prompt_tokens = outputs[0].prompt_tokens if outputs else 0
        return web.json_response(
            chat_completion(model_id, choices, prompt_tokens, sum(o.completion_tokens for o in outputs))
        )

    async def models(request: web.Request) -> web.Response:
        return web.json_response(model_list([model_id]))

    async def health(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "model": model_id, "batches": batcher.stats.batches})

    app = web.Application(client_max_size=16 * 1024 * 1024)
    app.router.add_post("/v1/chat/completions", chat)
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
    echo: Any = print,
) -> None:
    """Load ``model`` and serve it until interrupted; ``echo`` gets the listening line."""
    from aiohttp import web

    from stillhouse.plugins.hf_models import load_causal_lm

    spec = model[len(LOCAL_PREFIX) :] if model.startswith(LOCAL_PREFIX) else model
    loaded, tokenizer = load_causal_lm(spec, dtype=dtype, device=device)
    model_id = name or spec

    async def main() -> None:
        batcher = BatchingGenerator(loaded, tokenizer, max_batch=max_batch)
        runner = web.AppRunner(build_app(batcher, model_id), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound = runner.addresses[0][1]
        echo(f"Serving {model_id} at http://{host}:{bound}/v1 (max batch {max_batch}); Ctrl-C stops")
        try:
            await asyncio.Event().wait()
        finally:
            await runner.cleanup()
            batcher.close()

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
