"""Launching, cancelling and resuming runs as separate processes.

A run started from the TUI is ``still run CONFIG`` in its own session (``start_new_session``): closing
the TUI, or a Ctrl+C in its terminal, does not reach it. Its output goes to a log file under
``$STILLHOUSE_HOME/logs/``; the TUI follows the run through its ``events.jsonl`` like any other run,
finding the folder by the ``pid`` its ``run_started`` event records. Cancelling sends SIGINT to that
pid, which the pipeline turns into an orderly ``run_finished(status="interrupted")``.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from stillhouse.kernel.errors import RunNotFoundError, UserError
from stillhouse.kernel.run_folder import RunFolder
from stillhouse.kernel.runs import (  # liveness: one rule, shared with the registry and `still runs`
    pid_alive,
    process_start_time,  # noqa: F401 - re-exported for the TUI
    resolve_run_dir,
    run_process_alive,
    runs_root,
    same_process,
)
from stillhouse.tui.state import load_state


@dataclass
class Launched:
    """A pipeline process started by the TUI."""

    pid: int
    log_path: Path
    command: list[str]
    process: subprocess.Popen[bytes] | None = None

    def exit_code(self) -> int | None:
        """The exit code once the process ended, None while it runs (or when not our child)."""
        return self.process.poll() if self.process is not None else None


def still_command() -> list[str]:
    """How to call ``still`` with the same interpreter the TUI runs in."""
    beside = Path(sys.executable).with_name("still")
    if beside.exists():
        return [str(beside)]
    found = shutil.which("still")
    if found:
        return [found]
    return [sys.executable, "-c", "from stillhouse.kernel.cli import main; main()"]


def start_detached(args: list[str], home: Path, label: str) -> Launched:
    logs = home / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    log_path = logs / f"{stamp}-{label}-{os.getpid()}-{time.monotonic_ns() % 100000}.log"
    command = [*still_command(), *args]
    env = {**os.environ, "STILLHOUSE_HOME": str(home)}
    with open(log_path, "wb") as log:
        process = subprocess.Popen(  # noqa: S603 - our own CLI, arguments are paths and ids
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # survives the TUI and its terminal's Ctrl+C
            env=env,
            cwd=str(home),
        )
    return Launched(process.pid, log_path, command, process)


def launch_run(config_path: Path, home: Path, extra_args: list[str] | None = None) -> Launched:
    """Start ``still run CONFIG`` detached."""
    config_path = Path(config_path).resolve()
    if not config_path.exists():
        raise UserError(f"config file not found: {config_path}", hint="save the config before launching")
    return start_detached(["run", str(config_path), *(extra_args or [])], home, "run")


def resume_run(run_id: str, home: Path) -> Launched:
    """Start ``still run --resume RUN_ID`` detached, unless the run's process is still at work.

    A run whose events say "running" but whose process is gone (killed without a trace) is
    resumable: that is what resume is for."""
    run_dir = resolve_run_dir(run_id, home)
    state = load_state(run_dir)
    if state.status == "completed":
        raise UserError(f"run {run_id} already completed", hint="start a new run from its config instead")
    if state.status in ("running", "created") and state.pid and run_process_alive(run_dir, state.pid):
        raise UserError(f"run {run_id} is still running (pid {state.pid})", hint="cancel it first (x) to resume it later")
    return start_detached(["run", "--resume", run_id], home, f"resume-{run_id[-4:]}")


def find_run_by_pid(pid: int, home: Path, since: float = 0.0) -> str | None:
    """The run folder whose latest ``run_started`` event was written by ``pid`` (newest first)."""
    root = runs_root(home)
    if not root.is_dir():
        return None
    candidates = sorted(
        (p for p in root.iterdir() if RunFolder(p).is_run() and RunFolder(p).events_path.stat().st_mtime >= since),
        key=lambda p: p.stat().st_mtime,
        reverse=True,
    )
    for run_dir in candidates:
        if load_state(run_dir).pid == pid:
            return run_dir.name
    return None


def cancel_run(run_dir: Path) -> int:
    """SIGINT the process that is running ``run_dir``; returns the pid signalled."""
    state = load_state(run_dir)
    if state.status not in ("running", "created"):
        raise UserError(f"run {state.run_id} is not running (status: {state.status})")
    if state.pid is None:
        raise RunNotFoundError(
            f"run {state.run_id} recorded no pid in its run_started event", hint="stop it from the terminal that runs it"
        )
    if not pid_alive(state.pid) or not same_process(state.pid, state.last_start):
        raise UserError(
            f"process {state.pid} of run {state.run_id} is gone; the run was killed without finishing",
            hint="resume it (R) to continue from its last finished stage",
        )
    os.kill(state.pid, signal.SIGINT)
    return state.pid
