"""One run's lifecycle: the events and hooks around its stages, and how it ended.

Every command that records a run (``still run``, ``still eval``) goes through :class:`RunLifecycle`::

    life = RunLifecycle(run, host, on_event=printer)
    with life.start(task="nli", ...):          # run_started event, run_started hook
        with life.stage("generate") as stage:  # stage_started ... stage_finished / stage_failed
            stage.summary = do_the_work()      # stage_finished hook
    life.ending                                 # completed | incomplete | interrupted | user error | crash

Under torchrun every process runs the same code; only the main one (rank 0) writes events and calls
the lifecycle hooks, so a run is recorded once. The lifecycle never swallows an exception: it
records how the run ended and lets the caller decide (the pipeline turns an interrupt into a
return value, ``still eval`` lets the CLI report it).
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import FrameType, TracebackType
from typing import TYPE_CHECKING, Any, Literal, Protocol

from stillhouse.kernel.distributed import is_main_process
from stillhouse.kernel.errors import StillhouseError
from stillhouse.kernel.runs import Run, process_start_time

if TYPE_CHECKING:
    from stillhouse.kernel.plugins import PluginHost

EventSink = Callable[[dict[str, Any]], None]

# Exit codes of commands that record a run (documented in the README). A user error exits with its
# own StillhouseError.exit_code: 2 for bad input (UserError), 1 for the rest.
EXIT_COMPLETED = 0
EXIT_CRASH = 1
EXIT_INCOMPLETE = 3  # some work failed and `still run --resume` retries it
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report a Ctrl-C

RunStatus = Literal["completed", "incomplete", "interrupted", "failed"]
EndingKind = Literal["completed", "incomplete", "interrupted", "user_error", "crash"]

STOP_MESSAGE = "stopping at the next safe point… (Ctrl-C again to stop now)\n"


class StopRequested(Exception):
    """Raised inside a stage when the user asked the run to stop (Ctrl-C); the run can be resumed."""


@dataclass(frozen=True)
class RunEnding:
    """How a run ended: ``status`` is what ``run_finished`` records, ``exit_code`` what the CLI returns."""

    kind: EndingKind
    error: str | None = None
    exit_code: int = EXIT_COMPLETED

    @property
    def status(self) -> RunStatus:
        """A user error and a crash are both recorded "failed"; they differ in exit code and traceback."""
        if self.kind == "user_error" or self.kind == "crash":
            return "failed"
        return self.kind


def describe_failure(exc: BaseException) -> str:
    """The short text a stage_failed / run_finished event gives for an exception."""
    if isinstance(exc, StillhouseError):
        return exc.what
    return f"{type(exc).__name__}: {exc}"


def classify_ending(exc: BaseException | None, incomplete: dict[str, str], run_id: str) -> RunEnding:
    """How a run ended, from the exception that ended it (None: it ran to the end) and the stages
    that finished with work left."""
    if exc is None:
        if not incomplete:
            return RunEnding("completed")
        why = "; ".join(f"{stage}: {reason}" for stage, reason in incomplete.items())
        return RunEnding("incomplete", f"{why} (still run --resume {run_id} retries them)", EXIT_INCOMPLETE)
    if isinstance(exc, KeyboardInterrupt | StopRequested):
        return RunEnding("interrupted", "stopped by the user", EXIT_INTERRUPTED)
    if isinstance(exc, StillhouseError):  # the CLI shows it without a traceback
        return RunEnding("user_error", exc.what, exc.exit_code)
    return RunEnding("crash", describe_failure(exc), EXIT_CRASH)


@dataclass
class StageRecord:
    """The stage a ``with life.stage(name)`` block runs; the block sets ``summary``."""

    name: str
    summary: dict[str, Any] = field(default_factory=dict)


class RunLifecycle:
    """The events, hooks and stop request of one invocation of a run (see the module docstring)."""

    def __init__(self, run: Run, host: PluginHost, *, on_event: EventSink | None = None) -> None:
        self.run = run
        self.host = host
        self.on_event = on_event
        # Stages of this invocation that finished with work left (failed teacher calls): the run
        # then ends "incomplete", never "completed".
        self.incomplete: dict[str, str] = {}
        self.ending: RunEnding | None = None
        self._started: dict[str, Any] = {}
        self._stop = threading.Event()

    # -- events and the stop request ----------------------------------------------------------

    def emit(self, type_: str, **payload: Any) -> None:
        """Record an event (the main process only) and hand it to the progress printer."""
        if not is_main_process():
            return
        event = self.run.emit(type_, **payload)
        if self.on_event:
            self.on_event(event)

    def stop(self) -> None:
        """Ask the run to stop at the next safe point (thread-safe, callable from a signal handler)."""
        self._stop.set()

    def should_stop(self) -> bool:
        return self._stop.is_set()

    # -- the run --------------------------------------------------------------------------------

    def start(self, **fields: Any) -> RunLifecycle:
        """What ``run_started`` records (task, models, config ...); enter the result to run:
        ``with life.start(...):``. The process id is added here."""
        self._started = fields
        return self

    def __enter__(self) -> RunLifecycle:
        self.incomplete = {}
        self.ending = None
        pid = os.getpid()
        # pid_start tells this process from a later one that reuses its pid (see runs.py).
        self.emit("run_started", **self._started, pid=pid, pid_start=process_start_time(pid))
        if is_main_process():
            self.host.hook.run_started(run=self.run)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.ending = classify_ending(exc, self.incomplete, self.run.id)
        self.emit("run_finished", status=self.ending.status, error=self.ending.error)
        if is_main_process():
            self.host.hook.run_finished(run=self.run, status=self.ending.status)

    @contextmanager
    def stage(self, name: str) -> Iterator[StageRecord]:
        """One stage: ``stage_started``, then ``stage_finished`` with the summary the block set (and
        the stage_finished hook), or ``stage_failed`` when it raised or a stop was requested."""
        self.emit("stage_started", stage=name)
        started = time.perf_counter()
        record = StageRecord(name)
        try:
            yield record
        except (KeyboardInterrupt, StopRequested):
            self.emit("stage_failed", stage=name, error="interrupted")
            raise
        except Exception as exc:
            self.emit("stage_failed", stage=name, error=describe_failure(exc))
            raise
        if self.should_stop():  # the stage returned early because the user asked it to
            self.emit("stage_failed", stage=name, error="interrupted")
            raise StopRequested
        summary = record.summary
        self.emit("stage_finished", stage=name, summary=summary, seconds=round(time.perf_counter() - started, 3))
        if summary.get("incomplete"):
            failed = summary.get("failed")
            self.incomplete[name] = f"{failed} teacher call(s) failed" if failed else "unfinished work"
        if is_main_process():
            self.host.hook.stage_finished(run=self.run, stage=name, summary=summary)


class Stoppable(Protocol):
    def stop(self) -> None: ...

    def should_stop(self) -> bool: ...


def install_sigint(target: Stoppable) -> Callable[[], None]:
    """First Ctrl-C (or SIGTERM, as `kill` and service managers send) asks ``target`` to stop at a
    safe point and says so at once; a second one interrupts at once. Both leave a resumable run
    recorded "interrupted". Returns a function that restores the previous handlers."""
    signals = [signal.SIGINT, signal.SIGTERM]
    previous = {sig: signal.getsignal(sig) for sig in signals}

    def handler(signum: int, frame: FrameType | None) -> None:
        if target.should_stop():
            raise KeyboardInterrupt
        target.stop()
        try:  # os.write: safe inside a signal handler, unlike print
            os.write(2, STOP_MESSAGE.encode())
        except OSError:
            pass

    for sig in signals:
        signal.signal(sig, handler)

    def restore() -> None:
        for sig, old in previous.items():
            signal.signal(sig, old)

    return restore
