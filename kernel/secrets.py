"""The one rule set for secrets: which key names hold them, which strings look like them, and how
they are redacted.

Used in three places, so they can never disagree: config validation refuses a secret in a config
file (kernel/config.py), a run redacts what it writes (kernel/runs.py, the CLI's error output), and
the registry redacts at ingest as a second line (registry/redact.py).

A run knows its own secrets: the values of the environment variables its config names
(``teacher.api_key_env``, ``deployments[].api_key_env``, any ``*_env`` key). :func:`remember_env`
registers them for this process at run start; :func:`redact_text` then replaces them, every
credential-shaped string and every password in a URL, wherever the run writes or prints.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Iterable, Mapping
from typing import Any

REDACTED = "***REDACTED***"

# Whole key names (or their last _/-/. separated part) that hold secrets. `max_tokens`,
# `prompt_tokens`, `cache_key` and `api_key_env` (a variable *name*) do not match.
SECRET_KEY = re.compile(
    r"(?:^|[_\-.])(?:api[_\-]?key|apikey|access[_\-]?key|secret[_\-]?key|private[_\-]?key|client[_\-]?secret"
    r"|secret|token|access[_\-]?token|auth[_\-]?token|refresh[_\-]?token|password|passwd|authorization"
    r"|bearer|credentials?)$",
    re.IGNORECASE,
)
# In a config file a bare `key` is a secret too (in events it names a metric, so only here).
CONFIG_ONLY_SECRET_KEYS = frozenset({"key"})

# Credential-shaped substrings; the look-behind keeps words like "risk-assessment-..." intact.
EDGE = r"(?<![A-Za-z0-9])"
SECRET_VALUE = re.compile(
    EDGE + r"(?:sk-ant-[A-Za-z0-9_\-]{8,}"
    r"|sk-[A-Za-z0-9_\-]{16,}"
    r"|AKIA[0-9A-Z]{16}"
    r"|hf_[A-Za-z0-9]{30,}"
    r"|gh[pousr]_[A-Za-z0-9]{30,}"
    r"|github_pat_[A-Za-z0-9_]{30,}"
    r"|glpat-[A-Za-z0-9_\-]{20,}"
    r"|xox[abprs]-[A-Za-z0-9\-]{10,}"
    r"|AIza[0-9A-Za-z_\-]{35})"
    r"|\bBearer\s+[A-Za-z0-9._~+/=\-]{8,}"
    r"|\bBasic\s+[A-Za-z0-9+/=]{12,}",
)

# user:password@ (or a lone token@) in a URL: `http://admin:pass@host/`. The password part is
# what gets redacted; the user name is kept for the reader.
URL_CREDENTIALS = re.compile(r"(?P<scheme>\b[a-zA-Z][a-zA-Z0-9+.\-]*://)(?P<user>[^\s/@:\"'<>]*):(?P<password>[^\s/@\"'<>]+)@")

# Environment values shorter than this are not treated as secrets: redacting "1" or "yes"
# everywhere would mangle every file.
MIN_SECRET_LEN = 8


def is_secret_key(name: str, *, config: bool = False) -> bool:
    """Whether a key with this name holds a secret (``api_key``, ``hf_token``, ``Authorization``)."""
    lowered = name.lower()
    if lowered.endswith("_env"):
        return False  # names an environment variable, not a value
    return bool(SECRET_KEY.search(lowered.replace("__", "_"))) or (config and lowered in CONFIG_ONLY_SECRET_KEYS)


def find_secret_shape(text: str) -> str | None:
    """The first credential-shaped substring of ``text`` (sk-…, hf_…, Bearer …), or None."""
    match = SECRET_VALUE.search(text)
    return match.group(0) if match else None


def has_url_credentials(text: str) -> bool:
    return URL_CREDENTIALS.search(text) is not None


def env_names(config: Any) -> list[str]:
    """The environment variable names a config names: every string value of a ``*_env`` key."""
    names: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, Mapping):
            for key, value in node.items():
                if isinstance(key, str) and key.lower().endswith("_env") and isinstance(value, str) and value:
                    names.append(value)
                else:
                    walk(value)
        elif isinstance(node, (list, tuple)):
            for value in node:
                walk(value)

    walk(config)
    return list(dict.fromkeys(names))


def secret_env_values(environ: Mapping[str, str] | None = None) -> list[str]:
    """Values of secret-named environment variables (OPENAI_API_KEY, HF_TOKEN ...)."""
    environ = os.environ if environ is None else environ
    return [v for k, v in environ.items() if len(v) >= MIN_SECRET_LEN and SECRET_KEY.search(k.lower().replace("__", "_"))]


_lock = threading.Lock()
_known: list[str] = []  # longest first, so a secret that contains another is replaced whole


def remember(values: Iterable[str | None]) -> None:
    """Treat these exact strings as secrets in everything this process writes from now on."""
    global _known
    fresh = {v for v in values if v and len(v) >= MIN_SECRET_LEN}
    # as it appears inside a JSON string too (a quote or backslash in a key is escaped there)
    fresh |= {json.dumps(v, ensure_ascii=False)[1:-1] for v in fresh}
    with _lock:
        merged = set(_known) | fresh
        _known = sorted(merged, key=len, reverse=True)


def remember_env(config: Any) -> list[str]:
    """Remember the values of the environment variables ``config`` names, and of this process's
    secret-named variables. Returns the names found in the config."""
    names = env_names(config)
    remember([os.environ.get(n) for n in names])
    remember(secret_env_values())
    return names


def forget_all() -> None:
    """For tests: drop every remembered secret."""
    global _known
    with _lock:
        _known = []


def known_secrets() -> list[str]:
    return list(_known)


def redact_text(text: str, extra: Iterable[str] = ()) -> str:
    """``text`` with remembered secrets (and ``extra``), key-shaped strings and URL passwords
    replaced by ``***REDACTED***``."""
    for secret in (*_known, *extra):
        if secret and secret in text:
            text = text.replace(secret, REDACTED)
    if SECRET_VALUE.search(text):
        text = SECRET_VALUE.sub(REDACTED, text)
    if "://" in text and URL_CREDENTIALS.search(text):
        text = URL_CREDENTIALS.sub(lambda m: f"{m['scheme']}{m['user']}:{REDACTED}@", text)
    return text


def redact(value: Any, *, keys: bool = False) -> Any:
    """A copy of a JSON-like value with every string redacted; with ``keys``, the values of
    secret-named keys are hidden too (not for run records: a logprob's ``token`` is no secret)."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, Mapping):
        return {k: _redact_item(k, v, keys) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact(v, keys=keys) for v in value]
    return value


def _redact_item(key: Any, value: Any, keys: bool) -> Any:
    if keys and value is not None and value != "" and isinstance(key, str) and is_secret_key(key):
        if isinstance(value, (str, int, float)):
            return REDACTED
        if isinstance(value, (list, tuple)):
            return [REDACTED for _ in value]
    return redact(value, keys=keys)
