"""A sweep's folder and its Optuna study, and the loop one ``still sweep`` worker runs.

Everything Optuna knows lives in ``$STILLHOUSE_HOME/sweeps/<id>/journal.log``, Optuna's
append-only journal storage (``JournalStorage(JournalFileBackend(...))``): every ask and tell is one
appended line, so a ``kill -9`` loses at most the trial in flight, and several processes (or
machines sharing the folder) can fill the same study. Next to it, ``sweep.json`` says where the
sweep file was and ``sweep.toml`` keeps its text, so ``--resume SWEEP_ID`` needs neither.

A worker asks Optuna for a trial while fewer than ``n_trials`` trials are finished (complete or
pruned) or running, so workers sharing a study stop together. A trial left RUNNING by a process
that died (same machine, pid gone) is marked FAIL when a worker starts, and does not count.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stillhouse.kernel.errors import UserError
from stillhouse.kernel.runs import pid_alive, process_start_time, same_process, stillhouse_home

if TYPE_CHECKING:
    import optuna

JOURNAL = "journal.log"
# A worker gives up after this many failed trials in a row (a config that cannot run at all).
MAX_FAILURES_IN_A_ROW = 3


class SweepNotFoundError(UserError):
    title = "Sweep not found"


def sweeps_root(home: Path | None = None) -> Path:
    return (home or stillhouse_home()) / "sweeps"


def new_sweep_id(name: str | None) -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    slug = re.sub(r"[^a-z0-9]+", "-", (name or "sweep").lower()).strip("-")[:32] or "sweep"
    return f"{stamp}-{slug}-{secrets.token_hex(2)}"


def import_optuna() -> Any:
    try:
        import optuna
    except ImportError:
        raise UserError(
            "`still sweep` needs Optuna, which is not installed",
            hint="pip install 'stillhouse[tracking]'  (or: pip install 'optuna>=4.0')",
        ) from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


@dataclass
class SweepFolder:
    """``$STILLHOUSE_HOME/sweeps/<id>/``: the Optuna journal, the sweep file's text and where it was."""

    id: str
    dir: Path

    @classmethod
    def create(cls, name: str | None, source: Path, text: str, home: Path | None = None) -> SweepFolder:
        sweep_id = new_sweep_id(name)
        folder = cls(sweep_id, sweeps_root(home) / sweep_id)
        folder.dir.mkdir(parents=True, exist_ok=False)
        (folder.dir / "sweep.toml").write_text(text, encoding="utf-8")
        meta = {"id": sweep_id, "source": str(source.resolve()), "created": time.time()}
        (folder.dir / "sweep.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        return folder

    @classmethod
    def open(cls, sweep_id: str, home: Path | None = None) -> SweepFolder:
        root = sweeps_root(home)
        if not sweep_id or "/" in sweep_id or sweep_id.startswith(".") or not re.fullmatch(r"[A-Za-z0-9._-]+", sweep_id):
            raise SweepNotFoundError(f"'{sweep_id}' is not a sweep id", hint="`still sweep list` shows the sweeps")
        path = root / sweep_id
        if not (path / "sweep.json").is_file():
            matches = sorted(p.name for p in root.glob(f"*{sweep_id}*") if (p / "sweep.json").is_file()) if root.is_dir() else []
            if len(matches) == 1:
                return cls(matches[0], root / matches[0])
            raise SweepNotFoundError(
                f"no sweep '{sweep_id}' under {root}",
                hint="`still sweep list` shows the sweeps" + (f"; several match: {', '.join(matches)}" if matches else ""),
            )
        return cls(sweep_id, path)

    @property
    def source(self) -> Path:
        return Path(json.loads((self.dir / "sweep.json").read_text())["source"])

    @property
    def text(self) -> str:
        return (self.dir / "sweep.toml").read_text(encoding="utf-8")

    @property
    def journal(self) -> Path:
        return self.dir / JOURNAL

    def storage(self) -> Any:
        optuna = import_optuna()
        from optuna.storages.journal import JournalFileBackend

        return optuna.storages.JournalStorage(JournalFileBackend(str(self.journal)))


def list_sweeps(home: Path | None = None) -> list[SweepFolder]:
    root = sweeps_root(home)
    if not root.is_dir():
        return []
    return [SweepFolder(p.name, p) for p in sorted(root.iterdir()) if (p / "sweep.json").is_file()]


def open_study(
    folder: SweepFolder,
    directions: list[str],
    *,
    sampler: str = "tpe",
    seed: int | None = 0,
    pruner: str = "none",
    startup_trials: int = 2,
) -> optuna.Study:
    """Create the study in the sweep's journal, or load it (several workers, a resume)."""
    optuna = import_optuna()
    samplers = {
        "tpe": lambda: optuna.samplers.TPESampler(seed=seed),
        "random": lambda: optuna.samplers.RandomSampler(seed=seed),
    }
    pruners = {
        "median": lambda: optuna.pruners.MedianPruner(n_startup_trials=startup_trials, n_warmup_steps=0),
        "successive_halving": lambda: optuna.pruners.SuccessiveHalvingPruner(),
        "none": lambda: optuna.pruners.NopPruner(),
    }
    return optuna.create_study(
        study_name=folder.id,
        storage=folder.storage(),
        directions=directions,
        sampler=samplers[sampler](),
        pruner=pruners[pruner](),
        load_if_exists=True,
    )


def load_study(folder: SweepFolder) -> optuna.Study:
    optuna = import_optuna()
    return optuna.load_study(study_name=folder.id, storage=folder.storage())


# -- workers --------------------------------------------------------------------------------------


def worker_attrs() -> dict[str, Any]:
    pid = os.getpid()
    return {"host": socket.gethostname(), "pid": pid, "pid_start": process_start_time(pid)}


def worker_dead(attrs: Any) -> bool:
    """Whether the worker that owns a RUNNING trial is gone (judged on this machine only)."""
    if not isinstance(attrs, dict) or attrs.get("host") != socket.gethostname():
        return False
    pid = attrs.get("pid")
    if not isinstance(pid, int):
        return False
    if pid == os.getpid():
        return False
    start = attrs.get("pid_start")
    return not pid_alive(pid) or not same_process(pid, None, start if isinstance(start, (int, float)) else None)


def worker_alive(attrs: Any) -> bool:
    """Whether the worker that owns a RUNNING trial is a live process on this machine (one a
    cancel can signal)."""
    if not isinstance(attrs, dict) or attrs.get("host") != socket.gethostname() or not isinstance(attrs.get("pid"), int):
        return False
    return not worker_dead(attrs)


def fail_stale_trials(study: optuna.Study) -> list[int]:
    """Mark FAIL the RUNNING trials whose worker process died (a kill -9): they never finish."""
    optuna = import_optuna()
    failed = []
    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        if worker_dead(trial.user_attrs.get("worker")):
            study._storage.set_trial_state_values(trial._trial_id, optuna.trial.TrialState.FAIL)
            failed.append(trial.number)
    return failed


@dataclass
class TrialOutcome:
    """How one trial ended: ``state`` is complete | pruned | failed | interrupted."""

    state: str
    values: list[float] | None = None
    run_id: str | None = None
    error: str | None = None
    pruned_at_step: int | None = None


@dataclass
class WorkerSummary:
    trials: list[tuple[int, TrialOutcome]] = field(default_factory=list)
    stale_failed: list[int] = field(default_factory=list)
    stopped_because: str = ""


def finished_count(study: optuna.Study) -> tuple[int, int]:
    """(finished = complete + pruned, running) trials of the study."""
    optuna = import_optuna()
    states = [t.state for t in study.get_trials(deepcopy=False)]
    done = sum(s in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED) for s in states)
    return done, sum(s == optuna.trial.TrialState.RUNNING for s in states)


def work(
    study: optuna.Study,
    run_trial: Callable[[optuna.Trial], TrialOutcome],
    *,
    n_trials: int,
    timeout_s: float | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    on_trial: Callable[[int, TrialOutcome], None] | None = None,
    after_tell: Callable[[optuna.Trial, TrialOutcome], None] | None = None,
) -> WorkerSummary:
    """Ask, run and tell trials until ``n_trials`` are finished or running, the time is up, or a stop.
    ``after_tell`` sees each trial once Optuna recorded it (the sweep writes it into the trial's run)."""
    optuna = import_optuna()
    states = {
        "complete": optuna.trial.TrialState.COMPLETE,
        "pruned": optuna.trial.TrialState.PRUNED,
    }
    summary = WorkerSummary(stale_failed=fail_stale_trials(study))
    deadline = time.monotonic() + timeout_s if timeout_s else None
    failures = 0
    while True:
        if should_stop():
            summary.stopped_because = "stopped"
            break
        done, running = finished_count(study)
        if done + running >= n_trials:
            summary.stopped_because = f"{done} of {n_trials} trials finished" + (f", {running} running" if running else "")
            break
        if deadline is not None and time.monotonic() >= deadline:
            summary.stopped_because = "time budget spent"
            break
        trial = study.ask()
        trial.set_user_attr("worker", worker_attrs())
        try:
            outcome = run_trial(trial)
        except BaseException:
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            raise
        if outcome.run_id:
            trial.set_user_attr("run_id", outcome.run_id)
        if outcome.error:
            trial.set_user_attr("error", outcome.error[:500])
        if outcome.state == "complete" and outcome.values is not None:
            study.tell(trial, outcome.values)
            failures = 0
        elif outcome.state in states:
            study.tell(trial, state=states[outcome.state])
            failures = 0
        else:
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            failures += 1
        summary.trials.append((trial.number, outcome))
        if after_tell is not None:
            after_tell(trial, outcome)
        if on_trial is not None:
            on_trial(trial.number, outcome)
        if outcome.state == "interrupted":
            summary.stopped_because = "stopped"
            break
        if failures >= MAX_FAILURES_IN_A_ROW:
            summary.stopped_because = f"{failures} trials failed in a row"
            break
    return summary
