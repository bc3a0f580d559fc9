"""Sweeps for the TUI, without Textual: the list and a sweep's trials (read through the sweep
plugin's reading functions), sorting the trials, and launching, resuming and cancelling a sweep as
a separate ``still sweep`` process (as ``launch`` does for runs).

Cancelling sends SIGINT to every live worker process of the sweep on this machine (the pids its
RUNNING trials record); ``still sweep`` turns that into an orderly stop: the trial in flight ends
``interrupted`` and ``still sweep --resume`` continues the sweep later.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

from stillhouse.kernel.errors import UserError
from stillhouse.plugins.sweep.reading import SweepOverview, overview, overviews, trials
from stillhouse.plugins.sweep.study import SweepFolder
from stillhouse.tui.launch import Launched, start_detached

__all__ = ["SweepOverview", "best_run_ids", "cancel_sweep", "launch_sweep", "load_sweeps", "load_trials", "resume_sweep", "sort_trials"]


def load_sweeps(home: Path) -> list[SweepOverview]:
    return overviews(home)


def load_trials(home: Path, sweep_id: str) -> list[dict[str, Any]]:
    return trials(SweepFolder.open(sweep_id, home))


def objective_key(row: dict[str, Any], maximize: bool) -> tuple[int, float, int]:
    """Complete trials first, best objective first; then the others by trial number."""
    values = row.get("values")
    if not values:
        return (1, 0.0, row["number"])
    return (0, -values[0] if maximize else values[0], row["number"])


def sort_trials(rows: list[dict[str, Any]], by: str, *, maximize: bool, descending: bool) -> list[dict[str, Any]]:
    """``by`` = objective (best first unless ``descending`` is False: worst first) or trial."""
    if by == "objective":
        ordered = sorted(rows, key=lambda r: objective_key(r, maximize))
        if not descending:  # the worst complete trial first; unscored trials stay last
            scored = [r for r in ordered if r.get("values")]
            ordered = scored[::-1] + [r for r in ordered if not r.get("values")]
        return ordered
    return sorted(rows, key=lambda r: r["number"], reverse=descending)


def best_run_ids(rows: list[dict[str, Any]], *, maximize: bool, n: int = 3) -> list[str]:
    """The runs of the ``n`` best complete trials, best first."""
    ranked = sort_trials([r for r in rows if r.get("values") and r.get("run_id")], "objective", maximize=maximize, descending=True)
    return [r["run_id"] for r in ranked[:n]]


def launch_sweep(sweep_file: str | Path, home: Path) -> Launched:
    """Start ``still sweep FILE`` detached."""
    path = Path(sweep_file).expanduser().resolve()
    if not path.is_file():
        raise UserError(f"sweep file not found: {path}", hint="give the path of a sweep TOML file (docs/sweeps.md)")
    return start_detached(["sweep", str(path)], home, "sweep")


def resume_sweep(sweep_id: str, home: Path) -> Launched:
    """Start ``still sweep --resume ID`` detached: it continues a stopped sweep, or joins a
    running one as another worker."""
    row = overview(SweepFolder.open(sweep_id, home))
    if row.state == "finished":
        raise UserError(f"sweep {sweep_id} already finished its {row.target} trials", hint="start a new sweep for more trials")
    return start_detached(["sweep", "--resume", row.id], home, f"sweep-{row.id[-4:]}")


def cancel_sweep(sweep_id: str, home: Path) -> list[int]:
    """SIGINT every live worker of the sweep on this machine; returns the pids signalled."""
    row = overview(SweepFolder.open(sweep_id, home))
    if not row.worker_pids:
        raise UserError(f"sweep {sweep_id} has no running worker on this machine ({row.state})")
    for pid in row.worker_pids:
        os.kill(pid, signal.SIGINT)
    return row.worker_pids
