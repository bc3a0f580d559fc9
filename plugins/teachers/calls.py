"""One attempt at a teacher call through litellm, and what came of it.

:class:`LiteLLMCaller` makes exactly one HTTP attempt per ``call`` — litellm's and the OpenAI SDK's
own retries are switched off so the engine's retry count is the only one — and turns the outcome
into a plain :class:`Reply` or :class:`Failure` (picklable: worker processes send them back).
With ``deployments`` configured the call goes through a litellm ``Router``: the deployments share
the load by weight, and a retried attempt is routed again, so it falls back to a healthy deployment
while the router cools a failing one down.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Any

from stillhouse.kernel.errors import ConfigError, Location
from stillhouse.kernel.interfaces import Completion, Message, TokenLogprob
from stillhouse.kernel.teaching.replies import Failure, Reply, classify_exception, exception_chain
from stillhouse.plugins.teachers.config import LiteLLMTeacherConfig
from stillhouse.plugins.teachers.pricing import import_litellm

ROUTER_GROUP = "stillhouse-teacher"
LOCAL_KEY = "not-needed"  # servers on this machine rarely check keys, but the OpenAI client wants one


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
        get: Callable[[str], Any] = item.get if isinstance(item, dict) else functools.partial(_attribute, item)
        top = [
            (alt["token"], float(alt["logprob"])) if isinstance(alt, dict) else (alt.token, float(alt.logprob))
            for alt in (get("top_logprobs") or [])
        ]
        out.append(TokenLogprob(get("token"), float(get("logprob")), top))
    return out


def _attribute(obj: Any, name: str) -> Any:
    return getattr(obj, name, None)


def classify(exc: BaseException) -> Failure:
    """Map a litellm/OpenAI/transport exception to a Failure kind: the OpenAI SDK's exception
    types where they say more than the kernel's rules (HTTP status, timeouts, connection errors,
    bad JSON)."""
    import openai

    failure = classify_exception(
        exc,
        {
            "auth": (openai.AuthenticationError, openai.PermissionDeniedError),
            "rate_limited": (openai.RateLimitError,),
            "timeout": (openai.APITimeoutError,),
            "bad_request": (openai.BadRequestError, openai.NotFoundError, openai.UnprocessableEntityError),
            "server_error": (openai.InternalServerError,),
        },
    )
    # Last, as a fallback only: litellm wraps many provider errors in its APIConnectionError.
    if failure.kind == "error" and any(isinstance(e, openai.APIConnectionError) for e in exception_chain(exc)):
        failure.kind = "connection"
    return failure
