"""Runs: creating, finding and locking run folders, and the Run object lifecycle hooks receive.

What a run folder holds, and typed access to it, is ``kernel.run_folder``; the events written to
it are ``kernel.events``; what they add up to is ``kernel.run_state``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from stillhouse.kernel.errors import RunNotFoundError, UserError
from stillhouse.kernel.events import STAGES as STAGES  # re-exported: the CLI and the TUI import it from here
from stillhouse.kernel.events import Event
from stillhouse.kernel.run_folder import RunFolder
from stillhouse.kernel.run_folder import append_jsonl as append_jsonl  # re-exported, as above
from stillhouse.kernel.run_folder import read_jsonl as read_jsonl
from stillhouse.kernel.run_folder import write_text_redacted as write_text_redacted
from stillhouse.kernel.run_state import RunState, fold
from stillhouse.kernel.secrets import redact


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


@dataclass
class Run:
    """A run folder and its events. Passed to lifecycle hooks."""

    id: str
    dir: Path
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def folder(self) -> RunFolder:
        return RunFolder(self.dir)

    @property
    def events_path(self) -> Path:
        return self.folder.events_path

    def path(self, *parts: str) -> Path:
        return self.dir.joinpath(*parts)

    def emit(self, type_: str, **payload: Any) -> dict[str, Any]:
        event = {"ts": time.time(), "type": type_, "run_id": self.id, **redact(payload)}
        append_jsonl(self.events_path, [event], fsync=type_ not in ("progress", "metric"))
        return event  # redacted: the caller prints it

    def emit_many(self, events: list[dict[str, Any]]) -> None:
        stamped = [{"ts": time.time(), "run_id": self.id, **e} for e in events]
        append_jsonl(self.events_path, stamped)

    def events(self) -> Iterator[Event]:
        return self.folder.events()

    def state(self) -> RunState:
        """What the events on disk say (one fold: kernel.run_state)."""
        return fold(self.events(), self.id)

    def finished_stages(self) -> dict[str, dict[str, Any]]:
        """Stages whose latest attempt finished, with their summaries (see RunState.finished_stages)."""
        return self.state().finished_stages()

    def status(self) -> str:
        return self.state().status

    @classmethod
    def create(cls, name: str | None, config: dict[str, Any], home: Path | None = None) -> Run:
        run_id = new_run_id(name)
        run_dir = runs_root(home) / run_id
        run_dir.mkdir(parents=True, exist_ok=False)
        return cls(run_id, run_dir, config)

    @classmethod
    def open(cls, run_id: str, home: Path | None = None) -> Run:
        run_dir = resolve_run_dir(run_id, home)
        return cls(run_dir.name, run_dir, RunFolder(run_dir).read_config())


def list_runs(home: Path | None = None) -> list[Run]:
    root = runs_root(home)
    if not root.is_dir():
        return []
    # A symlink is not a run folder (Run.open refuses it): skipped, not fatal to the listing.
    entries = sorted(root.iterdir())
    return [Run.open(p.name, home) for p in entries if not p.is_symlink() and RunFolder(p).is_run()]


# -- user-given run ids ------------------------------------------------------------------------------
# A run id from the command line, the TUI or an imported registry becomes a path only through these:
# a folder directly under runs/, never "..", "/etc", a symlink out, or "" (which, as a substring,
# matched every run).


def check_run_id(run_id: str) -> str:
    """``run_id`` if it can only name an entry of the runs folder, else RunNotFoundError (exit 2)."""
    hint = "a run id is the name of a folder in $STILLHOUSE_HOME/runs; see `still runs list`"
    if not run_id or not run_id.strip():
        raise RunNotFoundError("empty run id", hint="is a shell variable unset? " + hint)
    if run_id in (".", "..") or any(c in run_id for c in ("/", "\\", "\0")) or Path(run_id).is_absolute():
        raise RunNotFoundError(f"'{run_id}' is not a run id: it is a path", hint=hint)
    if any(ord(c) < 32 for c in run_id):
        raise RunNotFoundError(f"{run_id!r} is not a run id: it holds control characters", hint=hint)
    return run_id


def run_folder(run_id: str, home: Path | None = None) -> Path:
    """The folder ``run_id`` names under runs/ (which may not exist); refuses ids that are paths and
    a folder that is a symlink or resolves outside runs/."""
    root = runs_root(home)
    folder = root / check_run_id(run_id)
    if folder.is_symlink() or (folder.exists() and folder.resolve().parent != root.resolve()):
        raise RunNotFoundError(
            f"run folder {folder} leads outside {root}", hint="a run folder is a real folder, not a link"
        )
    return folder


def resolve_run_dir(run_id: str, home: Path | None = None) -> Path:
    """The one run folder a user-given id names: the folder of that exact name, else the single one
    whose name contains it. Empty, path-like, ambiguous and unknown ids are refused (exit 2)."""
    root = runs_root(home)
    exact = run_folder(run_id, home)
    if exact.is_dir():
        return exact
    entries = sorted(root.iterdir()) if root.is_dir() else []
    matches = [p for p in entries if run_id in p.name and not p.is_symlink() and p.is_dir()]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise RunNotFoundError(
            f"'{run_id}' matches {len(matches)} runs",
            hint="give more of the id; candidates: " + ", ".join(m.name for m in matches[:5]),
        )
    raise RunNotFoundError(f"no run '{run_id}' under {root}", hint="see `still runs list`")


# -- one process per run -------------------------------------------------------------------------------

LOCK_FILE = RunFolder.LOCK
LOCK_TRIES = 5


class RunLockedError(UserError):
    title = "Run in use"


class RunLock:
    """An exclusive advisory lock (flock) on a run folder, with the holder's pid in the file.

    The kernel drops a flock when its process dies, however it dies, so a lock left by a killed run
    is simply taken over; nothing has to judge whether a pid is stale."""

    def __init__(self, run_dir: Path) -> None:
        self.path = RunFolder(run_dir).lock_path
        self._fd: int | None = None

    def acquire(self) -> RunLock:
        import fcntl

        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        for attempt in range(LOCK_TRIES):
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                # `lock_holder` probes for a moment: only a lock still held after a few tries is a holder.
                if attempt < LOCK_TRIES - 1:
                    time.sleep(0.05)
        else:
            holder = _read_pid(fd)
            os.close(fd)
            raise RunLockedError(
                f"run {self.path.parent.name} is in use by process {holder or '?'}",
                hint="wait for it to finish, or stop it (Ctrl-C, or x in `still tui`) and resume then",
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        import fcntl

        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def _read_pid(fd: int) -> int | None:
    try:
        return int(os.pread(fd, 32, 0).decode().strip() or 0) or None
    except (OSError, ValueError):
        return None


def lock_holder(run_dir: Path) -> int | None | bool:
    """The pid holding ``run_dir``'s lock (True if held but unreadable); None when no process holds
    it; False when the folder has no lock file (a run from before locks: judge by pid instead)."""
    import fcntl

    path = RunFolder(run_dir).lock_path
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return _read_pid(fd) or True
    finally:
        os.close(fd)  # closing drops the probe's own lock
    return None


# -- is the process of a run alive? ------------------------------------------------------------------


def pid_alive(pid: int) -> bool:
    try:
        os.kill(int(pid), 0)
    except (ProcessLookupError, ValueError, OverflowError):
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


def process_start_time(pid: int) -> float | None:
    """Unix time a process started (Linux /proc), None where that cannot be read."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        btime = next(
            int(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines() if line.startswith("btime")
        )
        ticks = int(stat[stat.rfind(")") + 2 :].split()[19])  # field 22, starttime, counted after "(comm)"
    except (OSError, StopIteration, ValueError, IndexError):
        return None
    return btime + ticks / os.sysconf("SC_CLK_TCK")


def same_process(pid: int, started_at: float | None, process_start: float | None = None) -> bool:
    """Whether ``pid`` is still the process that wrote a run_started event at ``started_at`` (whose
    own start time was ``process_start``, where recorded): a dead run's pid may have been reused by
    an unrelated process. Where start times are unknown, trust the pid."""
    start = process_start_time(pid)
    if start is None:
        return True
    if process_start is not None:
        return abs(start - process_start) <= 2.0  # btime has one-second resolution
    if started_at is None:
        return True
    return start <= started_at + 2.0  # the process existed before it wrote the event


def last_start(run_dir: Path) -> Event | None:
    """The latest run_started event of a run folder."""
    latest = None
    for event in RunFolder(run_dir).events():
        if event.get("type") == "run_started":
            latest = event
    return latest


def run_process_alive(run_dir: Path, pid: int | None = None, started: Mapping[str, Any] | None = None) -> bool:
    """Whether a process still works on ``run_dir``: its lock is held; or, for a folder without a
    lock file (older runs), the pid of its latest run_started is alive and is the same process.
    One rule for `still runs list`, the registry and the TUI."""
    holder = lock_holder(run_dir)
    if holder is not False:
        return holder is not None
    if started is None and pid is None:
        started = last_start(run_dir)
    if started is not None:
        pid = started.get("pid") if isinstance(started.get("pid"), int) else pid
    if not pid:
        return True  # nothing recorded to judge by: never call a run dead on no evidence
    if not pid_alive(pid):
        return False
    if started is None:
        started = last_start(run_dir) or {}
    ts = started.get("ts")
    pstart = started.get("pid_start")
    return same_process(
        pid,
        float(ts) if isinstance(ts, (int, float)) else None,
        float(pstart) if isinstance(pstart, (int, float)) else None,
    )
