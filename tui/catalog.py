"""The list of runs the Runs screen shows: loaded from the registry, kept live from run folders.

The registry answers "every run with its key numbers" in one query, which is what makes 10,000 runs
cheap. It learns about a run only when the run is ingested, so runs that are still going (or were
launched a second ago) are overlaid from their ``events.jsonl`` through :class:`EventFollower`.
Without a registry (not installed yet, or no database file) the folders alone are the source.

Filtering and sorting happen here, in memory: 10,000 small rows sort in milliseconds, and the screen
then shows them a page at a time.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stillhouse.kernel.run_folder import RunFolder
from stillhouse.kernel.runs import STAGES, runs_root
from stillhouse.tui.state import EventFollower, RunState

ROLES = ("teacher", "baseline", "student")
LIVE_STATUSES = ("running", "created")
TERMINAL_POLL_EVERY = 10  # refresh() calls between looks at finished runs' event files


@dataclass(frozen=True)
class RunRow:
    """One line of the Runs table."""

    run_id: str
    name: str = ""
    task: str = ""
    teacher: str = ""
    student: str = ""
    status: str = "created"
    progress: float | None = None
    primary_metric: str | None = None
    scores: dict[str, float | None] = field(default_factory=dict)  # role -> primary metric
    retention: float | None = None
    cost_usd: float | None = None
    started: float | None = None
    stage: str | None = None
    stages_done: tuple[str, ...] | None = None
    """The pipeline stages that finished, in pipeline order (None: not known)."""

    @property
    def live(self) -> bool:
        return self.status in LIVE_STATUSES

    def haystack(self) -> str:
        return " ".join((self.run_id, self.name, self.task, self.teacher, self.student, self.status)).lower()

    @classmethod
    def from_state(cls, state: RunState) -> RunRow:
        current = state.current_stage
        return cls(
            run_id=state.run_id,
            name=state.name or state.run_id,
            task=state.task,
            teacher=state.teacher,
            student=state.student,
            status=state.status,
            progress=state.progress,
            primary_metric=state.primary_metric,
            scores=state_scores(state),
            retention=state.retention,
            cost_usd=state.cost_usd if state.teacher_calls else None,
            started=state.started,
            stage=current.name if current else None,
            stages_done=tuple(s for s in STAGES if state.stages.get(s) and state.stages[s].status == "finished"),
        )


def state_scores(state: RunState) -> dict[str, float | None]:
    """Primary metric per role; a standalone evaluation's "model" shows as the student."""
    scores = {role: state.primary(role) for role in ROLES}
    if scores["student"] is None:
        scores["student"] = state.primary("model")
    return scores


# Sort keys by column key; None sorts last in either direction (see sort_rows).
SORT_KEYS: dict[str, Callable[[RunRow], Any]] = {
    "name": lambda r: r.name.lower(),
    "run_id": lambda r: r.run_id,
    "task": lambda r: r.task,
    "teacher": lambda r: r.teacher.lower(),
    "student": lambda r: r.student.lower(),
    "status": lambda r: r.status,
    "progress": lambda r: r.progress,
    "score_teacher": lambda r: r.scores.get("teacher"),
    "score_baseline": lambda r: r.scores.get("baseline"),
    "score_student": lambda r: r.scores.get("student"),
    "retention": lambda r: r.retention,
    "cost": lambda r: r.cost_usd,
    "started": lambda r: r.started,
}


def short_ids(run_ids: Iterable[str], shortest: int = 4) -> dict[str, str]:
    """The shortest tail of each run id (``shortest`` characters at least) that no other id
    contains: what ``still runs show`` and ``--resume`` take, since a user-given id names the one
    run whose name contains it. A tail never starts with "-" (a shell would pass it as an option)."""
    ids = list(run_ids)
    joined = "\n".join(ids)
    found = {}
    for run_id in ids:
        size = min(shortest, len(run_id))
        while size < len(run_id) and (run_id[-size] == "-" or joined.count(run_id[-size:]) > 1):
            size += 1
        found[run_id] = run_id[-size:]
    return found


def filter_rows(rows: Iterable[RunRow], text: str) -> list[RunRow]:
    """Rows matching every word of ``text``; ``status:running`` / ``task:nli`` match one field."""
    words = text.lower().split()
    out = []
    for row in rows:
        hay = row.haystack()
        if all(_matches(row, hay, word) for word in words):
            out.append(row)
    return out


def _matches(row: RunRow, hay: str, word: str) -> bool:
    if ":" in word:
        key, _, value = word.partition(":")
        attr = getattr(row, key, None)
        if isinstance(attr, str):
            return value in attr.lower()
    return word in hay


def sort_rows(rows: list[RunRow], column: str, descending: bool) -> list[RunRow]:
    """Sort by a column; rows without a value stay at the bottom whichever the direction."""
    key = SORT_KEYS[column]
    present = [r for r in rows if key(r) is not None]
    missing = [r for r in rows if key(r) is None]
    present.sort(key=key, reverse=descending)
    return present + missing


class RunCatalog:
    """All runs under a home, from the registry when it has them, kept current from run folders."""

    def __init__(self, home: Path, *, registry: Callable[..., list[RunRow]] | None = None) -> None:
        self.home = home
        self.root = runs_root(home)
        self._registry = registry
        self.rows: dict[str, RunRow] = {}
        self._followers: dict[str, EventFollower] = {}
        self._sizes: dict[str, int] = {}
        self._root_mtime: float | None = None
        self.source = "folders"
        self.registry_error: str | None = None
        self.registry_ids: set[str] = set()
        self._refreshes = 0
        # Swapped whole after each change, so the UI thread can read it without the lock.
        self.snapshot: tuple[RunRow, ...] = ()

    def newest(self, limit: int) -> list[RunRow]:
        """The newest ``limit`` runs, read straight from their folders: a first screenful in a
        fraction of the time the full read takes (no database to import and open). Run ids begin
        with their UTC start time, so the folder names sort newest last."""
        try:
            names = sorted((e.name for e in os.scandir(self.root) if e.is_dir()), reverse=True)
        except FileNotFoundError:
            return []
        rows: list[RunRow] = []
        for name in names:
            if len(rows) >= limit:
                break
            if os.path.exists(os.path.join(self.root, name, RunFolder.EVENTS)):
                self._follow(name)
                rows.append(self.rows[name])
        return rows

    def load(self, *, ingest: bool = False) -> list[RunRow]:
        """Full load: the registry's rows (if any), then every folder it does not know yet.
        ``ingest`` first brings the registry up to date with the folders (slower)."""
        self.rows.clear()
        self.registry_ids = set()
        if self._registry is not None:
            try:
                for row in self._registry(self.home, ingest=ingest):
                    self.rows[row.run_id] = row
                self.registry_ids = set(self.rows)
                self.source = "registry"
                self.registry_error = None
            except Exception as exc:  # noqa: BLE001 - the folders still work; say why in the footer
                self.registry_error = f"{type(exc).__name__}: {exc}"
                self.source = "folders"
        self._scan_folders(force=True)
        # Live runs are never trusted to the registry's snapshot: follow their events.
        for row in list(self.rows.values()):
            if row.live:
                self._follow(row.run_id)
        self.snapshot = tuple(self.rows.values())
        return list(self.snapshot)

    def refresh(self) -> list[RunRow]:
        """Re-read what changed since the last call; return the rows that changed."""
        changed: dict[str, RunRow] = {}
        for run_id in self._scan_folders(force=False):
            changed[run_id] = self.rows[run_id]
        self._refreshes += 1
        every_run = self._refreshes % TERMINAL_POLL_EVERY == 0
        for run_id, follower in list(self._followers.items()):
            if not every_run and follower.state.status not in LIVE_STATUSES:
                continue  # a finished run changes only when resumed: looked at every few calls
            size = _size(follower.path)
            if size == self._sizes.get(run_id):
                continue
            self._sizes[run_id] = size
            if follower.poll():
                row = RunRow.from_state(follower.state)
                self.rows[run_id] = row
                changed[run_id] = row
        if changed:
            self.snapshot = tuple(self.rows.values())
        return list(changed.values())

    def describe_source(self) -> str:
        """Where the rows came from, for the status line."""
        if self.source != "registry":
            return "run folders"
        extra = len(self.rows) - len(self.registry_ids)
        return f"registry + {extra} new folder{'s' if extra != 1 else ''}" if extra else "registry"

    def state(self, run_id: str) -> RunState | None:
        follower = self._followers.get(run_id)
        return follower.state if follower else None

    def _scan_folders(self, *, force: bool) -> list[str]:
        """Follow run folders not known yet. Listing is skipped while the runs folder is unchanged."""
        try:
            mtime = self.root.stat().st_mtime
        except FileNotFoundError:
            return []
        if not force and mtime == self._root_mtime:
            return []
        self._root_mtime = mtime
        added = []
        with os.scandir(self.root) as entries:
            for entry in entries:
                if entry.name in self.rows or not entry.is_dir():
                    continue
                if not os.path.exists(os.path.join(entry.path, RunFolder.EVENTS)):
                    continue  # created a moment ago; its first event will come with the next listing
                self._follow(entry.name)
                added.append(entry.name)
        return added

    def _follow(self, run_id: str) -> None:
        follower = self._followers.get(run_id) or EventFollower(self.root / run_id)
        self._followers[run_id] = follower
        follower.poll()
        self._sizes[run_id] = _size(follower.path)
        base = self.rows.get(run_id)
        row = RunRow.from_state(follower.state)
        if base is not None and not follower.state.events_seen:
            row = base  # folder has no readable events (yet): keep what the registry said
        self.rows[run_id] = row


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return -1


def format_started(ts: float | None) -> str:
    """A start time as a fixed-width UTC stamp (absolute, so snapshots are stable)."""
    if ts is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M", time.gmtime(ts))


