"""SVG snapshots of New run, SQL and Compare at 80x24 and 120x40, and Runs in the light theme
(see snapshot_scenarios)."""

from __future__ import annotations

from pathlib import Path

import pytest

from stillhouse.tui.screens import sql
from tests.tui.snapshot_scenarios import SIZES, compare, new_run_error, runs, sql_results, sql_schema

IDS = [f"{w}x{h}" for w, h in SIZES]


@pytest.mark.parametrize("size", SIZES, ids=IDS)
@pytest.mark.parametrize("scenario", [compare, new_run_error, sql_results, sql_schema], ids=lambda f: f.__name__)
def test_snapshot(
    scenario, size: tuple[int, int], fixture_home: Path, examples_dir: Path, make_app, snap_compare, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sql, "elapsed_text", lambda seconds: "12 ms")
    assert snap_compare(make_app(fixture_home), terminal_size=size, run_before=scenario)


def test_light_theme_snapshot(fixture_home: Path, examples_dir: Path, make_app, snap_compare) -> None:
    app = make_app(fixture_home, theme="textual-light")
    assert snap_compare(app, terminal_size=(80, 24), run_before=runs)
