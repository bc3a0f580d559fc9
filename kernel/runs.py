"""Run folders: the durable truth of a run.

``$STILLHOUSE_HOME/runs/<run_id>/`` holds

- ``config.toml`` / ``config.json``  the resolved config (no secrets: keys are env var *names*)
- ``events.jsonl``                   append-only, one JSON object a line (see EVENT TYPES below)
- ``teacher/outputs.jsonl``          one TeacherResult a line, appended + fsynced as they arrive
- ``samples.jsonl``                  the filter stage's verdict and targets per example
- ``checkpoints/``, ``student/``     training state and the distilled student
- ``eval/``                          per-sample evaluation outputs and results.json
- ``report.md``, ``report.html``

EVENT TYPES (every event has ``ts`` (unix seconds, float), ``type`` and ``run_id``):

==================  ===============================================================================
run_started         name, task, teacher_model, student_model, config (dict), config_hash, resumed
stage_started       stage
progress            stage, done, total
stage_finished      stage, summary (dict), seconds
stage_failed        stage, error
teacher_call        sample_id, split, model, cache_key, cache_hit, prompt_tokens, completion_tokens,
                    cost_usd, latency_ms, error
metric              key, value, step, context ("train" | "validation" | stage name)
eval                role, metric, value, n, reason, model
artifact            name, path (relative to the run folder), bytes
log                 level, message
run_finished        status (completed | incomplete | failed | interrupted), error
==================  ===============================================================================
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from stillhouse.kernel.errors import RunNotFoundError
from stillhouse.kernel.secrets import redact, redact_text

STAGES = ("generate", "filter", "train", "evaluate", "report")


def stillhouse_home() -> Path:
    """``$STILLHOUSE_HOME``, default ``./.stillhouse``."""
    return Path(os.environ.get("STILLHOUSE_HOME") or ".stillhouse").resolve()


def runs_root(home: Path | None = None) -> Path:
    return (home or stillhouse_home()) / "runs"


def new_run_id(name: str | None) -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    slug = re.sub(r"[^a-z0-9]+", "-", (name or "run").lower()).strip("-")[:32] or "run"
    return f"{stamp}-{slug}-{secrets.token_hex(2)}"


def config_hash(config: dict[str, Any]) -> str:
    payload = json.dumps(config, sort_keys=True, default=str).encode()
    return hashlib.sha256(payload).hexdigest()[:16]


_checked_tails: set[Path] = set()


def append_jsonl(path: Path, records: list[dict[str, Any]], *, fsync: bool = True) -> None:
    """Append records durably: one write, then fsync, so a kill loses at most this call."""
    if not records:
        return
    # Redacted at the source: a provider that echoes the key in an error never gets it on disk.
    data = redact_text("".join(json.dumps(r, default=str, ensure_ascii=False) + "\n" for r in records))
    path.parent.mkdir(parents=True, exist_ok=True)
    if path not in _checked_tails:
        # A process killed mid-write can leave a torn last line; end it so the next record
        # starts on a line of its own (readers skip the torn one). Once per file per process.
        _checked_tails.add(path)
        if path.exists() and path.stat().st_size:
            with open(path, "rb") as fh:
                fh.seek(-1, os.SEEK_END)
                if fh.read(1) != b"\n":
                    data = "\n" + data
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(data)
        fh.flush()
        if fsync:
            os.fsync(fh.fileno())


def write_text_redacted(path: Path, text: str) -> None:
    """Write a run file whole (atomically: a temporary file, then rename), secrets redacted."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(redact_text(text), encoding="utf-8")
    os.replace(tmp, path)


def read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    """Read a JSONL file written by us, ignoring a torn last line left by a kill."""
    if not path.exists():
        return
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            line = line.strip()
            if not line:
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                continue  # only a torn final line can be malformed: we write whole lines


@dataclass
class Run:
    """A run folder and its events. Passed to lifecycle hooks."""

    id: str
    dir: Path
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def events_path(self) -> Path:
        return self.dir / "events.jsonl"

    def path(self, *parts: str) -> Path:
        return self.dir.joinpath(*parts)

    def emit(self, type_: str, **payload: Any) -> dict[str, Any]:
        event = {"ts": time.time(), "type": type_, "run_id": self.id, **redact(payload)}
        append_jsonl(self.events_path, [event], fsync=type_ not in ("progress", "metric"))
        return event  # redacted: the caller prints it

    def emit_many(self, events: list[dict[str, Any]]) -> None:
        stamped = [{"ts": time.time(), "run_id": self.id, **e} for e in events]
        append_jsonl(self.events_path, stamped)

    def events(self) -> Iterator[dict[str, Any]]:
        return read_jsonl(self.events_path)

    def finished_stages(self) -> dict[str, dict[str, Any]]:
        """Stages whose ``stage_finished`` event is on disk, with their summaries. A stage that
        started again later (re-run with ``--stage``) counts as unfinished until it finishes again."""
        done: dict[str, dict[str, Any]] = {}
        for event in self.events():
            if event.get("type") == "stage_finished":
                done[event["stage"]] = event.get("summary") or {}
            elif event.get("type") == "stage_started":
                done.pop(event["stage"], None)
        return done

    def status(self) -> str:
        status = "created"
        for event in self.events():
            if event.get("type") == "run_started":
                status = "running"
            elif event.get("type") == "run_finished":
                status = event.get("status", "completed")
        return status

    @classmethod
    def create(cls, name: str | None, config: dict[str, Any], home: Path | None = None) -> Run:
        run_id = new_run_id(name)
        run_dir = runs_root(home) / run_id
        run_dir.mkdir(parents=True, exist_ok=False)
        return cls(run_id, run_dir, config)

    @classmethod
    def open(cls, run_id: str, home: Path | None = None) -> Run:
        root = runs_root(home)
        run_dir = root / run_id
        if not run_dir.is_dir():
            matches = sorted(p.name for p in root.glob(f"*{run_id}*") if p.is_dir()) if root.is_dir() else []
            if len(matches) == 1:
                run_dir = root / matches[0]
            else:
                hint = f"candidates: {', '.join(matches[:5])}" if matches else "see `still runs list`"
                raise RunNotFoundError(f"no run '{run_id}' under {root}", hint=hint)
        config_path = run_dir / "config.json"
        config = json.loads(config_path.read_text()) if config_path.exists() else {}
        return cls(run_dir.name, run_dir, config)


def list_runs(home: Path | None = None) -> list[Run]:
    root = runs_root(home)
    if not root.is_dir():
        return []
    return [Run.open(p.name, home) for p in sorted(root.iterdir()) if (p / "events.jsonl").exists()]
