"""Retention has one Python definition (kernel.comparison.retention); the run_summary view spells it
in SQL (a migration cannot import Python). Both must give the same number on the same scores."""

from __future__ import annotations

from pathlib import Path

import pytest

from stillhouse.kernel.comparison import retention
from stillhouse.registry.ingest import ingest_all
from stillhouse.testing.sample_runs import FakeRun, write_run
from tests.registry.conftest import table

SCORES = {
    "20261201-100000-ret-0001": {"teacher": 0.9, "baseline": 0.4, "student": 0.72},
    "20261201-100000-ret-0002": {"teacher": 0.5, "baseline": 0.4, "student": 0.65},  # the student beats its teacher
    "20261201-100000-ret-0003": {"teacher": 0.0, "baseline": 0.0, "student": 0.3},  # no share of nothing
    "20261201-100000-ret-0004": {"teacher": 0.7, "baseline": 0.1, "student": 0.0},
}


def test_the_view_and_the_function_agree(home: Path) -> None:
    for run_id, scores in SCORES.items():
        write_run(home, FakeRun(run_id, scores=scores))
    ingest_all(home)
    rows = table(home, "SELECT run_id, teacher_score, student_score, retention_pct FROM run_summary ORDER BY run_id")
    assert [r[0] for r in rows] == sorted(SCORES)
    for run_id, teacher, student, pct in rows:
        assert (teacher, student) == (SCORES[run_id]["teacher"], SCORES[run_id]["student"])
        share = retention(student, teacher)
        assert (pct is None) == (share is None), run_id
        if share is not None:
            assert pct == pytest.approx(100 * share)
