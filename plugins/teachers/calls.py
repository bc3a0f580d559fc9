"""One attempt at a teacher call through litellm, and what came of it.

:class:`LiteLLMCaller` makes exactly one HTTP attempt per ``call`` — litellm's and the OpenAI SDK's
own retries are switched off so the engine's retry count is the only one — and turns the outcome
into a plain :class:`Reply` or :class:`Failure` (picklable: worker processes send them back).
With ``deployments`` configured the call goes through a litellm ``Router``: the deployments share
the load by weight, and a retried attempt is routed again, so it falls back to a healthy deployment
while the router cools a failing one down.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

from stillhouse.kernel.errors import ConfigError, Location
from stillhouse.kernel.interfaces import Completion, Message, TokenLogprob
from stillhouse.plugins.teachers.config import LiteLLMTeacherConfig
from stillhouse.plugins.teachers.pricing import import_litellm

ROUTER_GROUP = "stillhouse-teacher"
LOCAL_KEY = "not-needed"  # servers on this machine rarely check keys, but the OpenAI client wants one


@dataclass
class Reply:
    completions: list[Completion]
    prompt_tokens: int
    completion_tokens: int
    provider_cost: float | None = None


RETRYABLE = frozenset({"rate_limited", "server_error", "timeout", "connection", "malformed_response"})
FATAL = frozenset({"auth", "internal"})  # every later call would fail the same way


@dataclass
class Failure:
    """Why an attempt failed. ``kind`` decides what happens next: retry, record, or stop the run."""

    kind: str
    message: str
    status: int | None = None
    retry_after: float | None = None

    @property
    def retryable(self) -> bool:
        return self.kind in RETRYABLE

    @property
    def fatal(self) -> bool:
        return self.kind in FATAL


def resolve_key(env_name: str | None, field: str) -> str | None:
    """The API key from the environment variable the config names (never the key itself)."""
    if env_name is None:
        return None
    value = os.environ.get(env_name)
    if not value:
        raise ConfigError(
            f"environment variable {env_name} is not set (it should hold the teacher's API key)",
            where=Location(field=field),
            hint=f"export {env_name}=... before running, or point {field} at the variable that holds the key",
        )
    return value


def _call_target(model: str, api_base: str | None, key: str | None) -> dict[str, Any]:
    target: dict[str, Any] = {"model": model}
    if api_base:
        target["api_base"] = api_base
    if key is not None:
        target["api_key"] = key
    elif api_base:
        target["api_key"] = LOCAL_KEY
    return target


class LiteLLMCaller:
    """Makes single attempts for one teacher config; build it inside the event loop that uses it."""

    def __init__(self, config: LiteLLMTeacherConfig) -> None:
        self.litellm: Any = import_litellm()
        self.config = config
        self.params = {k: v for k, v in config.sampling_params().items() if v is not None}
        self.router: Any = None
        if config.is_local:
            from stillhouse.plugins.teachers.local import register_local_provider

            register_local_provider(config)
        if config.deployments:
            self.router = self._build_router()
            self.target: dict[str, Any] = {"model": ROUTER_GROUP}
        else:
            self.target = _call_target(
                config.model, config.api_base, resolve_key(config.api_key_env, "teacher.api_key_env")
            )

    def _build_router(self) -> Any:
        model_list = []
        for i, dep in enumerate(self.config.deployments):
            key = resolve_key(dep.api_key_env or self.config.api_key_env, f"teacher.deployments[{i}].api_key_env")
            params = _call_target(dep.model, dep.api_base, key)
            params.update(max_retries=0, weight=dep.weight)
            if dep.rpm:
                params["rpm"] = dep.rpm
            if dep.tpm:
                params["tpm"] = dep.tpm
            model_list.append(
                {"model_name": ROUTER_GROUP, "litellm_params": params, "model_info": {"id": f"deployment-{i}"}}
            )
        # num_retries=0 and no fallback groups: the engine retries, and each retry is routed afresh.
        return self.litellm.Router(
            model_list=model_list,
            routing_strategy="simple-shuffle",
            num_retries=0,
            allowed_fails=1,
            cooldown_time=min(30.0, max(1.0, self.config.retry_max_delay)),
        )

    async def call(self, messages: list[Message], timeout: float) -> Reply | Failure:
        kwargs = {**self.target, **self.params, "messages": messages, "timeout": timeout, "drop_params": True}
        try:
            if self.router is not None:
                response = await self.router.acompletion(**kwargs)
            else:
                response = await self.litellm.acompletion(max_retries=0, **kwargs)
        except Exception as exc:  # every provider error becomes a classified Failure
            return classify(exc)
        return parse_response(response)


def parse_response(response: Any) -> Reply:
    completions = []
    for choice in response.choices:
        message = getattr(choice, "message", None)
        text = getattr(message, "content", None) or ""
        completions.append(
            Completion(text=text, finish_reason=getattr(choice, "finish_reason", None), logprobs=_logprobs(choice))
        )
    usage = getattr(response, "usage", None)
    hidden = getattr(response, "_hidden_params", None) or {}
    return Reply(
        completions=completions,
        prompt_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
        completion_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
        provider_cost=hidden.get("response_cost"),
    )


def _logprobs(choice: Any) -> list[TokenLogprob] | None:
    logprobs = getattr(choice, "logprobs", None)
    content = getattr(logprobs, "content", None) if logprobs is not None else None
    if isinstance(logprobs, dict):
        content = logprobs.get("content")
    if not content:
        return None
    out = []
    for item in content:
        get = item.get if isinstance(item, dict) else lambda name, _i=item: getattr(_i, name, None)
        top = [
            (alt["token"], float(alt["logprob"])) if isinstance(alt, dict) else (alt.token, float(alt.logprob))
            for alt in (get("top_logprobs") or [])
        ]
        out.append(TokenLogprob(get("token"), float(get("logprob")), top))
    return out


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def _retry_after(exc: BaseException) -> float | None:
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None) or getattr(exc, "litellm_response_headers", None)
    if not headers:
        return None
    try:
        if headers.get("retry-after-ms"):
            return float(headers["retry-after-ms"]) / 1000
        if headers.get("retry-after"):
            return float(headers["retry-after"])
    except (TypeError, ValueError):  # an HTTP date: ignore, the backoff applies
        return None
    return None


def classify(exc: BaseException) -> Failure:
    """Map a litellm/OpenAI/transport exception to a Failure kind (see RETRYABLE and FATAL)."""
    import asyncio

    import openai

    chain = _chain(exc)
    status = getattr(exc, "status_code", None)
    message = str(exc).replace("\n", " ")[:500]

    def has(*types: type[BaseException]) -> bool:
        return any(isinstance(e, types) for e in chain)

    if has(openai.AuthenticationError, openai.PermissionDeniedError) or status in (401, 403):
        kind = "auth"
    elif has(openai.RateLimitError) or status == 429:
        kind = "rate_limited"
    elif has(openai.APITimeoutError, asyncio.TimeoutError, TimeoutError) or status == 408:
        kind = "timeout"
    elif has(json.JSONDecodeError):
        kind = "malformed_response"
    elif has(ConnectionError, OSError) or _transport_error(chain):
        kind = "connection"
    elif has(openai.BadRequestError, openai.NotFoundError, openai.UnprocessableEntityError) or status in (
        400,
        404,
        422,
    ):
        kind = "bad_request"
    elif (isinstance(status, int) and status >= 500) or has(openai.InternalServerError):
        kind = "server_error"
    elif has(openai.APIConnectionError):
        kind = "connection"
    else:
        kind = "error"
    return Failure(kind, message, status if isinstance(status, int) else None, _retry_after(exc))


def _transport_error(chain: list[BaseException]) -> bool:
    import httpx

    return any(isinstance(e, httpx.TransportError) and not isinstance(e, httpx.TimeoutException) for e in chain)
