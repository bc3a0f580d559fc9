"""Registry plugin: follows runs through lifecycle hooks and adds `still sql` / `still runs` /
`still registry`.

The hooks ingest the run's folder when a run starts, after each stage and at the end, so the
registry is current without anyone asking. They never fail a run: a registry problem is written
to the run's events as a warning (queries ingest again before they read anyway).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from stillhouse.kernel import hookimpl

if TYPE_CHECKING:  # pragma: no cover
    import click

    from stillhouse.kernel.runs import Run

log = logging.getLogger(__name__)


def _ingest(run: Run, when: str) -> None:
    from stillhouse.registry.ingest import ingest_run

    try:
        ingest_run(run.dir)
    except Exception as exc:  # the registry must never take a run down
        log.warning("registry ingest after %s failed: %s", when, exc)
        try:
            run.emit("log", level="warning", message=f"registry ingest after {when} failed: {exc}")
        except OSError:
            pass


@hookimpl
def run_started(run: Run) -> None:
    _ingest(run, "run start")


@hookimpl
def stage_finished(run: Run, stage: str, summary: dict[str, Any]) -> None:
    _ingest(run, f"stage {stage}")


@hookimpl
def run_finished(run: Run, status: str) -> None:
    _ingest(run, "run end")


@hookimpl
def register_commands(cli: click.Group) -> None:
    from stillhouse.registry.cli import add_commands

    add_commands(cli)
