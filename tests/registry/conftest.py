from __future__ import annotations

from pathlib import Path

import pytest

from stillhouse.testing.sample_runs import standard_runs, write_run


@pytest.fixture
def home(stillhouse_home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty Stillhouse home (STILLHOUSE_HOME points at it) with a short lock timeout, so a
    locking bug fails a test in seconds instead of hanging it."""
    monkeypatch.setenv("STILLHOUSE_REGISTRY_LOCK_TIMEOUT", "10")
    return stillhouse_home


@pytest.fixture
def filled_home(home: Path) -> Path:
    """A home with the ten standard fabricated runs (tasks, teachers, failed, running, still eval)."""
    for spec in standard_runs():
        write_run(home, spec)
    return home


@pytest.fixture
def still(make_host):
    """The real `still` CLI with every plugin's commands (the registry's among them)."""
    from stillhouse.kernel.cli import build_cli

    return build_cli(make_host())


def table(home: Path, sql: str, params: list | None = None) -> list[tuple]:
    """Rows of a query, without ingesting first (tests decide when ingest happens)."""
    from stillhouse.registry.db import read_query

    return read_query(sql, params, home=home, ingest=False).rows
