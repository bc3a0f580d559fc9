"""The OpenAI chat-completions wire format, shared by ``still serve`` and the scriptable test server.

Only the fields litellm and the OpenAI SDK read are produced. Kept free of aiohttp and torch so
both servers (and their tests) can use it.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass
class ChoiceOut:
    """One generated choice: text, why it stopped, and optional per-token log-probs
    ``[(token, logprob, [(alt_token, alt_logprob), ...]), ...]``."""

    text: str
    finish_reason: str = "stop"
    logprobs: Sequence[tuple[str, float, Sequence[tuple[str, float]]]] | None = None


def chat_completion(
    model: str, choices: Sequence[ChoiceOut], prompt_tokens: int, completion_tokens: int
) -> dict[str, Any]:
    """A ``chat.completion`` response body with usage."""
    body_choices = []
    for index, choice in enumerate(choices):
        item: dict[str, Any] = {
            "index": index,
            "message": {"role": "assistant", "content": choice.text},
            "finish_reason": choice.finish_reason,
            "logprobs": None,
        }
        if choice.logprobs is not None:
            item["logprobs"] = {
                "content": [
                    {
                        "token": token,
                        "logprob": logprob,
                        "bytes": list(token.encode()),
                        "top_logprobs": [{"token": t, "logprob": lp, "bytes": list(t.encode())} for t, lp in top],
                    }
                    for token, logprob, top in choice.logprobs
                ]
            }
        body_choices.append(item)
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": body_choices,
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def chunk_base(model: str) -> dict[str, Any]:
    """The fields every chunk of one streamed answer shares."""
    return {"id": f"chatcmpl-{uuid.uuid4().hex[:24]}", "object": "chat.completion.chunk", "created": int(time.time()), "model": model}


def delta_chunk(base: dict[str, Any], delta: dict[str, Any], finish: str | None = None, index: int = 0) -> dict[str, Any]:
    return {**base, "choices": [{"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}]}


def usage_chunk(base: dict[str, Any], prompt_tokens: int, completion_tokens: int) -> dict[str, Any]:
    """The last chunk with ``stream_options.include_usage``: no choices, the usage, as OpenAI sends it."""
    usage = {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens, "total_tokens": prompt_tokens + completion_tokens}
    return {**base, "choices": [], "usage": usage}


def chat_chunks(
    model: str, choices: Sequence[ChoiceOut], prompt_tokens: int, completion_tokens: int, *, include_usage: bool = False
) -> list[dict[str, Any]]:
    """The ``chat.completion.chunk`` bodies of an answer already generated, in order: per choice its
    role, its text and its finish reason; with ``include_usage`` (the request's ``stream_options``)
    the usage chunk."""
    base = chunk_base(model)
    chunks: list[dict[str, Any]] = []
    for index, choice in enumerate(choices):
        for delta, finish in (({"role": "assistant", "content": ""}, None), ({"content": choice.text}, None), ({}, choice.finish_reason)):
            chunks.append(delta_chunk(base, delta, finish, index))
    if include_usage:
        chunks.append(usage_chunk(base, prompt_tokens, completion_tokens))
    return chunks


def model_list(model_ids: Sequence[str]) -> dict[str, Any]:
    """The ``/v1/models`` response body."""
    return {
        "object": "list",
        "data": [{"id": m, "object": "model", "created": 0, "owned_by": "stillhouse"} for m in model_ids],
    }


def error_body(message: str, kind: str = "invalid_request_error", code: int | str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


class RequestError(ValueError):
    """A chat-completions request the server cannot honour (answered with HTTP 400)."""


@dataclass
class ChatParams:
    """The sampling parameters of a chat-completions request, validated."""

    messages: list[dict[str, str]]
    n: int = 1
    max_tokens: int = 256
    temperature: float = 1.0
    top_p: float | None = None
    stop: list[str] | None = None
    seed: int | None = None
    logprobs: bool = False
    top_logprobs: int = 0
    stream: bool = False
    include_usage: bool = False
    """stream_options.include_usage: a streamed answer ends with a usage chunk."""


def parse_chat_request(body: Any, *, max_n: int = 64, max_tokens_cap: int = 32768, streaming: bool = False) -> ChatParams:
    """Validate a request body the way the OpenAI API does, for the fields we honour (``stream``
    only where the server says it can: ``streaming``)."""
    if not isinstance(body, dict):
        raise RequestError("request body must be a JSON object")
    if body.get("stream") and not streaming:
        raise RequestError("streaming is not supported by this server; send stream=false")
    if body.get("stream") is not None and not isinstance(body.get("stream"), bool):
        raise RequestError("'stream' must be true or false")
    options = body.get("stream_options")
    if options is not None and not isinstance(options, dict):
        raise RequestError("'stream_options' must be an object")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise RequestError("'messages' must be a non-empty list")
    clean: list[dict[str, str]] = []
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or "role" not in message:
            raise RequestError(f"messages[{i}] must be an object with 'role' and 'content'")
        content = message.get("content") or ""
        if isinstance(content, list):  # the content-parts form: keep the text parts
            content = "".join(part.get("text", "") for part in content if isinstance(part, dict))
        clean.append({"role": str(message["role"]), "content": str(content)})
    n = _int(body, "n", 1, 1, max_n)
    # The first of the two names that is present: `or` would turn an explicit 0 into the default.
    name = "max_completion_tokens" if body.get("max_completion_tokens") is not None else "max_tokens"
    max_tokens = _int(body, name, 256, 1, max_tokens_cap)
    temperature = body.get("temperature", 1.0)
    if temperature is None:
        temperature = 1.0
    if not _is_number(temperature) or not 0 <= temperature <= 2:
        raise RequestError("'temperature' must be a number in 0..2")
    top_p = body.get("top_p")
    if top_p is not None and (not _is_number(top_p) or not 0 < top_p <= 1):
        raise RequestError("'top_p' must be a number in (0, 1]")
    stop = body.get("stop")
    if isinstance(stop, str):
        stop = [stop]
    if stop is not None and (not isinstance(stop, list) or not all(isinstance(s, str) for s in stop)):
        raise RequestError("'stop' must be a string or a list of strings")
    seed = body.get("seed")
    # A 64-bit integer, as OpenAI's API takes: torch's generator refuses anything larger (a 500 before).
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool) or not -(2**63) <= seed < 2**64):
        raise RequestError("'seed' must be a 64-bit integer")
    if body.get("logprobs") is not None and not isinstance(body.get("logprobs"), bool):
        raise RequestError("'logprobs' must be true or false")
    top_logprobs = _int(body, "top_logprobs", 0, 0, 20)
    return ChatParams(
        messages=clean,
        n=n,
        max_tokens=max_tokens,
        temperature=float(temperature),
        top_p=float(top_p) if top_p is not None else None,
        stop=stop or None,
        seed=seed,
        logprobs=bool(body.get("logprobs")),
        top_logprobs=top_logprobs,
        stream=bool(body.get("stream")),
        include_usage=bool((options or {}).get("include_usage")),
    )


def _is_number(value: Any) -> bool:
    """JSON numbers only: Python counts True as 1, the API does not."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def _int(body: dict[str, Any], name: str, default: int, low: int, high: int) -> int:
    value = body.get(name)
    if value is None:
        return default
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise RequestError(f"'{name}' must be an integer in {low}..{high}")
    return value
