"""SVG snapshots of Runs and the run detail tabs at 80x24 and 120x40 (see snapshot_scenarios)."""

from __future__ import annotations

from pathlib import Path

import pytest

from stillhouse.tui.screens import sql
from tests.tui.snapshot_scenarios import SIZES, evaluation, overview_live, runs, samples_rejected, training

IDS = [f"{w}x{h}" for w, h in SIZES]


@pytest.mark.parametrize("size", SIZES, ids=IDS)
@pytest.mark.parametrize("scenario", [evaluation, overview_live, runs, samples_rejected, training], ids=lambda f: f.__name__)
def test_snapshot(
    scenario, size: tuple[int, int], fixture_home: Path, examples_dir: Path, make_app, snap_compare, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sql, "elapsed_text", lambda seconds: "12 ms")
    assert snap_compare(make_app(fixture_home), terminal_size=size, run_before=scenario)
