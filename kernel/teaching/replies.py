"""One teacher call and what came of it: the contract between a teacher's ``complete`` and the engine.

A :class:`Reply` is an answer; a :class:`Failure` says why there is none, and its ``kind`` decides
what the engine does next: retry it (``RETRYABLE``), stop the run (``FATAL``: every later call
would fail the same way), or record it against the prompt. Both are plain picklable dataclasses,
so worker processes can send them back.

A teacher may also raise instead of returning a Failure: :func:`classify_exception` maps the
exceptions any HTTP client raises (an HTTP status on the exception or its response, timeouts,
connection errors, undecodable JSON) to a kind.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from stillhouse.kernel.interfaces import Completion, Message

RETRYABLE = frozenset({"rate_limited", "server_error", "timeout", "connection", "malformed_response"})
FATAL = frozenset({"auth", "internal"})


@dataclass
class Call:
    """What one call asks: the chat messages, and the seconds the answer may take. The sampling
    settings are the teacher's config (``self.config``), the same for every call of a run."""

    messages: list[Message]
    timeout: float


@dataclass
class Reply:
    """An answer: ``samples`` completions and the tokens they took. ``provider_cost`` is the
    provider's own figure for the call, used when no price is configured."""

    completions: list[Completion]
    prompt_tokens: int = 0
    completion_tokens: int = 0
    provider_cost: float | None = None


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


def exception_chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and the exceptions it was raised from or while handling, outermost first."""
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def http_status(exc: BaseException) -> int | None:
    """The HTTP status an exception carries (``status_code`` on it, as the OpenAI SDK sets, or on
    its ``response``, as httpx's HTTPStatusError has), if any."""
    status = getattr(exc, "status_code", None)
    if not isinstance(status, int):
        status = getattr(getattr(exc, "response", None), "status_code", None)
    return status if isinstance(status, int) else None


def retry_after(exc: BaseException) -> float | None:
    """Seconds the server asked to wait (``retry-after-ms`` or ``retry-after`` headers)."""
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


def classify_exception(
    exc: BaseException, known: Mapping[str, tuple[type[BaseException], ...]] | None = None
) -> Failure:
    """A Failure for an exception a teacher's call raised, by its HTTP status or its type.

    ``known`` adds a client library's own exception types per kind (``{"auth":
    (openai.AuthenticationError,)}``). Kinds are tried in a fixed order, most specific first: a
    rate-limit error that also carries a timeout in its chain is ``rate_limited``.
    """
    known = known or {}
    chain = exception_chain(exc)
    status = next((s for s in map(http_status, chain) if s is not None), None)
    httpx: Any = sys.modules.get("httpx")  # an httpx error means httpx is loaded: nothing to import

    def has(kind: str, *types: type[BaseException]) -> bool:
        return any(isinstance(e, (*known.get(kind, ()), *types)) for e in chain)

    def transport(timeouts: bool) -> bool:
        if httpx is None:
            return False
        return any(
            isinstance(e, httpx.TransportError) and isinstance(e, httpx.TimeoutException) == timeouts for e in chain
        )

    if has("auth") or status in (401, 403):
        kind = "auth"
    elif has("rate_limited") or status == 429:
        kind = "rate_limited"
    elif has("timeout", TimeoutError) or status == 408 or transport(timeouts=True):
        kind = "timeout"
    elif has("malformed_response", json.JSONDecodeError):
        kind = "malformed_response"
    elif has("connection", ConnectionError, OSError) or transport(timeouts=False):
        kind = "connection"
    elif has("bad_request") or status in (400, 404, 422):
        kind = "bad_request"
    elif has("server_error") or (status is not None and status >= 500):
        kind = "server_error"
    else:
        kind = "error"
    message = str(exc).replace("\n", " ")[:500] or type(exc).__name__
    return Failure(kind, message, status, retry_after(exc))
