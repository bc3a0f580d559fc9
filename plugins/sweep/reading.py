"""Reading a sweep folder without running anything: its overview and its trials, for
``still sweep list`` and the TUI's Sweeps screen (which polls these while a sweep runs).

Only the sweep file's own ``[sweep]`` table is parsed here, not the pipeline config it points at:
a sweep whose config moved still lists. Optuna is imported on first use.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stillhouse.plugins.sweep.report import trial_row
from stillhouse.plugins.sweep.spec import SweepFile, SweepSection
from stillhouse.plugins.sweep.study import (
    SweepFolder,
    import_optuna,
    list_sweeps,
    load_study,
    worker_alive,
    worker_dead,
)


@dataclass
class SweepOverview:
    """One sweep as a list shows it. ``state``: running | finished | stopped | empty | unreadable."""

    id: str
    dir: Path
    name: str
    objective: str
    directions: list[str]
    target: int
    finished: int = 0
    running: int = 0
    failed: int = 0
    total: int = 0
    best_value: float | None = None
    best_trial: int | None = None
    state: str = "empty"
    error: str | None = None
    worker_pids: list[int] = field(default_factory=list)
    """Live processes (this machine) running trials of the sweep: what a cancel signals."""

    @property
    def progress(self) -> float:
        return min(1.0, self.finished / self.target) if self.target else 0.0


def read_section(folder: SweepFolder) -> SweepSection:
    """The ``[sweep]`` table of the sweep file kept in the folder, validated."""
    return SweepFile.model_validate(tomllib.loads(folder.text)).sweep


def overview(folder: SweepFolder) -> SweepOverview:
    """Counts, best value and state of one sweep; a sweep that cannot be read says why."""
    try:
        section = read_section(folder)
    except Exception as exc:  # noqa: BLE001 - one broken folder must not hide the others
        return SweepOverview(folder.id, folder.dir, folder.id, "?", [], 0, state="unreadable", error=f"{type(exc).__name__}: {exc}")
    objective = section.objective.metric or "primary metric"
    row = SweepOverview(
        folder.id, folder.dir, section.name or Path(folder.source).stem, objective, [], section.n_trials
    )
    if not folder.journal.exists():
        return row
    try:
        optuna = import_optuna()
        study = load_study(folder)
        trials = study.get_trials(deepcopy=False)
    except Exception as exc:  # noqa: BLE001
        row.state, row.error = "unreadable", f"{type(exc).__name__}: {exc}"
        return row
    states = optuna.trial.TrialState
    row.directions = [d.name.lower() for d in study.directions]
    row.target = int(study.user_attrs.get("n_trials") or section.n_trials)
    named = study.user_attrs.get("objectives")
    if isinstance(named, list) and named:
        row.objective = str(named[0])
    row.total = len(trials)
    row.finished = sum(t.state in (states.COMPLETE, states.PRUNED) for t in trials)
    row.failed = sum(t.state == states.FAIL for t in trials)
    running = [t for t in trials if t.state == states.RUNNING and not worker_dead(t.user_attrs.get("worker"))]
    row.running = len(running)  # a worker on another machine sharing the folder counts as live
    here = [t.user_attrs["worker"] for t in running if worker_alive(t.user_attrs.get("worker"))]
    row.worker_pids = sorted({int(w["pid"]) for w in here})
    complete = [t for t in trials if t.state == states.COMPLETE and t.values]
    if complete:
        maximize = row.directions[0] == "maximize"
        best = max(complete, key=lambda t: t.values[0] if maximize else -t.values[0])
        row.best_value, row.best_trial = float(best.values[0]), best.number
    if row.running:
        row.state = "running"
    elif row.finished >= row.target:
        row.state = "finished"
    else:
        row.state = "stopped" if trials else "empty"
    return row


def overviews(home: Path | None = None) -> list[SweepOverview]:
    """Every sweep under ``$STILLHOUSE_HOME/sweeps``, newest first."""
    return [overview(folder) for folder in reversed(list_sweeps(home))]


def trials(folder: SweepFolder) -> list[dict[str, Any]]:
    """Every trial of the sweep as ``still sweep show`` lists them (values, params, run id, seconds)."""
    section = read_section(folder)
    if not folder.journal.exists():
        return []
    return [trial_row(t, section.space) for t in load_study(folder).get_trials(deepcopy=False)]
