"""The content-addressed teacher response cache.

A response is stored under the SHA-256 of what determines it — model, endpoint, messages,
sampling parameters and the number of completions — so a rerun, a resumed run or a second pipeline with the
same prompts gets it back without calling the teacher. Only successful responses are stored: a
failure is retried the next time.

One SQLite file (``responses.sqlite`` in the cache folder), one row per key, in WAL mode: each
response is committed as it arrives, so a ``kill -9`` loses at most the calls in flight, and several
processes (two pipelines, a worker and a reader) can share the file. ``synchronous=NORMAL`` keeps a
commit off the disk's fsync path: the WAL survives the process dying; only an OS crash or power
loss can drop the last commits, which then cost a repeated call, never a wrong answer.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from stillhouse.kernel.interfaces import Completion, Message, TokenLogprob

CACHE_FILE = "responses.sqlite"
SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    completions TEXT NOT NULL,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    cost_usd REAL,
    latency_ms REAL NOT NULL,
    created REAL NOT NULL
) WITHOUT ROWID;
"""


def normal_base(api_base: str | None) -> str | None:
    """``HTTP://Host:8000/v1/`` and ``http://host:8000/v1`` are one endpoint (and one cache key)."""
    if not api_base:
        return None
    parts = urlsplit(api_base.strip())
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), parts.path.rstrip("/"), parts.query, ""))


def cache_key(model: str, messages: Sequence[Message], params: dict[str, Any], endpoint: Any = None) -> str:
    """SHA-256 over the canonical JSON of (model, messages, sampling parameters incl. n, endpoint).

    Parameters that are None are dropped first, so adding an unset option to the config later does
    not invalidate existing entries. ``endpoint`` identifies the server behind the model name (its
    api_base, or the deployments a router spreads calls over): the same name on another server
    is another model, and must not be served the first one's answers.
    """
    payload = {
        "v": SCHEMA_VERSION,
        "model": model,
        "messages": [{"role": m["role"], "content": m["content"]} for m in messages],
        "params": {k: v for k, v in sorted(params.items()) if v is not None},
    }
    if endpoint:  # absent for the provider's default endpoint, so those keys are unchanged
        payload["endpoint"] = endpoint
    blob = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


@dataclass
class CachedResponse:
    """What the teacher answered once, with what it cost then."""

    model: str
    completions: list[Completion]
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float | None
    latency_ms: float


def completions_to_json(completions: Sequence[Completion]) -> str:
    return json.dumps([asdict(c) for c in completions], ensure_ascii=False, separators=(",", ":"))


def completions_from_json(text: str) -> list[Completion]:
    out = []
    for item in json.loads(text):
        logprobs = item.get("logprobs")
        if logprobs is not None:
            logprobs = [
                TokenLogprob(lp["token"], lp["logprob"], [tuple(t) for t in lp.get("top", [])]) for lp in logprobs
            ]
        out.append(Completion(item["text"], item.get("finish_reason"), logprobs))
    return out


_OPEN_LOCK = threading.Lock()


class ResponseCache:
    """A handle on the cache file; use from one thread (open one per thread)."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / CACHE_FILE
        # isolation_level=None: autocommit; each put is its own durable transaction.
        self._db = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        # Several teachers open the same new cache file at once (vote mode asks them concurrently):
        # switching a fresh file to WAL does not wait on SQLite's busy timeout, so it can fail with
        # "database is locked" (seen under load in the slow suite). Opening is serialised in this
        # process and retried for other processes.
        with _OPEN_LOCK:
            for attempt in range(50):
                try:
                    self._db.execute("PRAGMA journal_mode=WAL")
                    self._db.execute("PRAGMA synchronous=NORMAL")
                    self._db.executescript(_SCHEMA)
                    break
                except sqlite3.OperationalError as exc:
                    if "locked" not in str(exc) or attempt == 49:
                        raise
                    time.sleep(0.1)

    def get_many(self, keys: Iterable[str]) -> dict[str, CachedResponse]:
        """The cached responses among ``keys`` (queried in chunks: SQLite caps bound parameters)."""
        unique = list(dict.fromkeys(keys))
        found: dict[str, CachedResponse] = {}
        for start in range(0, len(unique), 500):
            chunk = unique[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(
                "SELECT key, model, completions, prompt_tokens, completion_tokens, cost_usd, latency_ms "
                f"FROM responses WHERE key IN ({marks})",
                chunk,
            )
            for key, model, comps, pt, ct, cost, latency in rows:
                found[key] = CachedResponse(model, completions_from_json(comps), pt, ct, cost, latency)
        return found

    def contains(self, keys: Iterable[str]) -> set[str]:
        unique = list(dict.fromkeys(keys))
        found: set[str] = set()
        for start in range(0, len(unique), 500):
            chunk = unique[start : start + 500]
            marks = ",".join("?" * len(chunk))
            found.update(k for (k,) in self._db.execute(f"SELECT key FROM responses WHERE key IN ({marks})", chunk))
        return found

    def put(self, key: str, response: CachedResponse) -> None:
        self.put_many([(key, response)])

    def put_many(self, items: Sequence[tuple[str, CachedResponse]]) -> None:
        """Store responses in one transaction: all of them are durable when this returns."""
        if not items:
            return
        now = time.time()
        rows = [
            (
                key,
                r.model,
                completions_to_json(r.completions),
                r.prompt_tokens,
                r.completion_tokens,
                r.cost_usd,
                r.latency_ms,
                now,
            )
            for key, r in items
        ]
        with self._db:  # BEGIN ... COMMIT (rolled back if a row fails)
            self._db.execute("BEGIN")
            self._db.executemany("INSERT OR REPLACE INTO responses VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)

    def __len__(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM responses").fetchone()[0])

    def close(self) -> None:
        self._db.close()


def open_cache(folder: Path | None) -> ResponseCache | None:
    return ResponseCache(Path(folder)) if folder is not None else None
