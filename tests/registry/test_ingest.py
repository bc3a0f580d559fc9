"""Ingest: run folders -> rows. Real DuckDB files, fabricated run folders in the documented format."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pyarrow as pa
import pytest

from stillhouse.kernel.runs import append_jsonl
from stillhouse.registry.ingest import ingest_all, ingest_run
from stillhouse.registry.schema import public_tables
from stillhouse.testing.sample_runs import FakeRun, fabricate, standard_runs, write_outputs, write_run
from tests.registry.conftest import table


def snapshot(home: Path) -> dict[str, list[tuple]]:
    """Every public table's rows, sorted, for comparing whole databases."""
    return {t: sorted(table(home, f"SELECT * FROM {t}"), key=repr) for t in public_tables()}


def test_standard_runs_land_in_every_table(filled_home: Path) -> None:
    written = ingest_all(filled_home)
    counts = {t: table(filled_home, f"SELECT count(*) FROM {t}")[0][0] for t in public_tables()}
    specs = standard_runs()
    assert counts["runs"] == len(specs)
    # one teacher_call event per sample for every pipeline run
    assert counts["teacher_calls"] == sum(s.samples for s in specs if s.kind == "pipeline")
    assert counts["samples"] == counts["teacher_calls"]
    # sweep_results holds only trials of a `still sweep` (test_views_sweeps_teachers.py fills it)
    assert all(counts[t] > 0 for t in public_tables() if t != "sweep_results"), counts
    assert counts["sweep_results"] == 0
    # evals are written twice (eval events, then eval/results.json replaces its roles)
    assert written == sum(counts.values()) + counts["evals"]


def test_run_summary_matches_the_folders(filled_home: Path) -> None:
    """Every run_summary number recomputed from the fabricated files themselves."""
    ingest_all(filled_home)
    rows = {r[0]: r for r in table(filled_home, "SELECT * FROM run_summary")}
    cols = [r[0] for r in table(filled_home, "SELECT column_name FROM (DESCRIBE run_summary)")]
    for spec in standard_runs():
        files = fabricate(spec)
        got = dict(zip(cols, rows[spec.run_id], strict=True))
        calls = [e for e in files.events if e["type"] == "teacher_call"]
        assert got["task"] == spec.task and got["kind"] == spec.kind
        assert got["status"] == spec.status
        assert got["samples"] == len(files.samples)
        assert got["samples_accepted"] == sum(s["accepted"] for s in files.samples)
        assert got["samples_rejected"] == sum(not s["accepted"] for s in files.samples)
        assert got["teacher_calls"] == len(calls)
        if calls:
            assert got["cache_hit_rate"] == pytest.approx(sum(c["cache_hit"] for c in calls) / len(calls))
        costs = [c["cost_usd"] for c in calls if c["cost_usd"] is not None]
        assert got["cost_usd"] == (pytest.approx(sum(costs)) if costs else None)
        if spec.status == "completed" and spec.kind == "pipeline":
            assert got["teacher_score"] == spec.scores["teacher"]
            assert got["student_score"] == spec.scores["student"]
            assert got["retention_pct"] == pytest.approx(100 * spec.scores["student"] / spec.scores["teacher"])
            assert got["finished_at"] is not None
        else:
            assert got["retention_pct"] is None
        if spec.kind == "eval":
            assert got["model_score"] == spec.scores["model"]
        losses = [e for e in files.events if e["type"] == "metric" and e["key"] == "train/loss"]
        if losses:
            assert got["final_train_loss"] == pytest.approx(losses[-1]["value"])
            assert got["train_steps"] == losses[-1]["step"]


def test_ingest_twice_changes_nothing(filled_home: Path) -> None:
    ingest_all(filled_home)
    before = snapshot(filled_home)
    assert ingest_all(filled_home) == 0
    for run_dir in sorted((filled_home / "runs").iterdir()):
        assert ingest_run(run_dir) == 0
    assert snapshot(filled_home) == before


def test_incremental_ingest_equals_one_shot(home: Path, tmp_path: Path) -> None:
    """Appending events in pieces (with torn lines), ingesting after each piece, ends exactly
    where ingesting the finished folder once does."""
    spec = FakeRun("20261130-100000-inc-b001", task="qa", seed=11, train_steps=12)
    files = fabricate(spec)
    run_dir = home / "runs" / spec.run_id
    run_dir.mkdir(parents=True)
    events = run_dir / "events.jsonl"
    lines = [json.dumps(e) + "\n" for e in files.events]
    cut = len(lines) // 3
    for chunk in (lines[:cut], lines[cut : 2 * cut], lines[2 * cut :]):
        text = "".join(chunk)
        half = len(text) - 7  # a torn last line: the writer is mid-append
        with open(events, "a") as fh:
            fh.write(text[:half])
        ingest_run(run_dir)
        with open(events, "a") as fh:
            fh.write(text[half:])
        ingest_run(run_dir)
        if chunk is lines[:cut]:
            assert table(home, "SELECT status FROM runs")[0][0] == "running"
    write_outputs(run_dir, files)
    ingest_run(run_dir)
    incremental = snapshot(home)

    other = tmp_path / "one-shot"
    write_run(other, spec)
    ingest_all(other)
    one_shot = snapshot(other)
    for name in public_tables():
        strip = [
            tuple(v for v in row if v != str(run_dir) and v != str(other / "runs" / spec.run_id))
            for row in incremental[name]
        ]
        strip_other = [
            tuple(v for v in row if v != str(run_dir) and v != str(other / "runs" / spec.run_id))
            for row in one_shot[name]
        ]
        assert strip == strip_other, name
    offset = table(home, "SELECT events_offset FROM _ingest_state")[0][0]
    assert offset == events.stat().st_size


def test_only_new_lines_are_read(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from stillhouse.registry import ingest

    spec = FakeRun("20261130-100000-off-b002", seed=12)
    run_dir = write_run(home, spec)
    ingest_all(home)
    metrics_before = table(home, "SELECT count(*) FROM metrics")[0][0]
    new = {
        "ts": spec.started + 999,
        "type": "metric",
        "run_id": spec.run_id,
        "key": "train/loss",
        "value": 0.1,
        "step": 999,
        "context": "train",
    }
    append_jsonl(run_dir / "events.jsonl", [new])
    seen: list[bytes] = []
    real = ingest.plan_run
    monkeypatch.setattr(ingest, "plan_run", lambda *a: (lambda d: seen.append(d.data) or d)(real(*a)))
    ingest_all(home)
    assert seen == [(json.dumps(new) + "\n").encode()]
    assert table(home, "SELECT count(*) FROM metrics")[0][0] == metrics_before + 1
    assert table(home, "SELECT value FROM metrics_latest WHERE key = 'train/loss'")[0][0] == 0.1


def test_samples_and_results_are_replaced_when_rewritten(filled_home: Path) -> None:
    ingest_all(filled_home)
    spec = standard_runs()[0]
    run_dir = filled_home / "runs" / spec.run_id
    files = fabricate(spec)
    files.samples = files.samples[:5]
    for s in files.samples:
        s["accepted"], s["reason"] = False, "too_long"
    files.results["student"]["metrics"][0]["value"] = 0.5
    write_outputs(run_dir, files)
    ingest_all(filled_home)
    assert table(
        filled_home,
        "SELECT count(*), count(*) FILTER (WHERE reason = 'too_long') FROM samples WHERE run_id = ?",
        [spec.run_id],
    ) == [(5, 5)]
    assert table(filled_home, "SELECT student_score FROM run_summary WHERE run_id = ?", [spec.run_id]) == [(0.5,)]
    # no duplicate eval rows: one per (role, metric)
    assert table(
        filled_home, "SELECT count(*) FROM (SELECT run_id, role, metric FROM evals GROUP BY ALL HAVING count(*) > 1)"
    ) == [(0,)]


def test_a_recreated_events_file_is_ingested_afresh(home: Path) -> None:
    spec = FakeRun("20261130-100000-new-b003", seed=13)
    run_dir = write_run(home, spec)
    ingest_all(home)
    # Same run id, different (longer) events file: the head hash differs, so nothing is appended twice.
    (run_dir / "events.jsonl").unlink()
    replacement = FakeRun(spec.run_id, seed=14, task="math", train_steps=40, started=spec.started + 50)
    append_jsonl(run_dir / "events.jsonl", fabricate(replacement).events, fsync=False)
    ingest_all(home)
    assert table(home, "SELECT task, train_steps FROM run_summary") == [("math", 40)]
    assert table(home, "SELECT count(*) FROM metrics WHERE key = 'train/loss'") == [(40,)]


def test_a_truncated_events_file_resets_the_run(home: Path) -> None:
    spec = FakeRun("20261130-100000-cut-b004", seed=15)
    run_dir = write_run(home, spec)
    ingest_all(home)
    events = run_dir / "events.jsonl"
    lines = events.read_text().splitlines(keepends=True)
    events.write_text("".join(lines[:5]))
    ingest_all(home)
    assert table(home, "SELECT status, teacher_calls FROM run_summary") == [
        ("running", sum(1 for line in lines[:5] if '"teacher_call"' in line))
    ]


def test_rows_of_deleted_folders_are_dropped(filled_home: Path) -> None:
    import shutil

    ingest_all(filled_home)
    victim = standard_runs()[1].run_id
    shutil.rmtree(filled_home / "runs" / victim)
    ingest_all(filled_home)
    for name in (*public_tables(), "_ingest_state"):
        assert table(filled_home, f"SELECT count(*) FROM {name} WHERE run_id = ?", [victim]) == [(0,)], name
    assert table(filled_home, "SELECT count(*) FROM runs") == [(len(standard_runs()) - 1,)]


def test_resumed_run_and_rerun_stage(home: Path) -> None:
    spec = FakeRun("20261130-100000-res-b005", seed=16, status="failed")
    run_dir = write_run(home, spec)
    ingest_all(home)
    assert table(home, "SELECT status, error FROM runs") == [("failed", "stage train failed")]
    assert table(home, "SELECT status, attempts FROM stages WHERE stage = 'train'") == [("failed", 1)]
    t = spec.started + 10_000
    resumed = [
        {
            "ts": t,
            "type": "run_started",
            "run_id": spec.run_id,
            "task": "nli",
            "config": {"task": "nli"},
            "resumed": True,
        },
        {"ts": t + 1, "type": "stage_started", "run_id": spec.run_id, "stage": "train"},
        {
            "ts": t + 2,
            "type": "stage_finished",
            "run_id": spec.run_id,
            "stage": "train",
            "summary": {"steps": 3},
            "seconds": 1.0,
        },
        {"ts": t + 3, "type": "run_finished", "run_id": spec.run_id, "status": "completed", "error": None},
    ]
    append_jsonl(run_dir / "events.jsonl", resumed)
    ingest_all(home)
    assert table(home, "SELECT status, error, starts FROM runs") == [("completed", None, 2)]
    assert table(home, "SELECT status, attempts, error FROM stages WHERE stage = 'train'") == [("finished", 2, None)]
    # created_at stays the first start; the params follow the latest config
    assert table(home, "SELECT epoch(created_at) FROM runs")[0][0] == pytest.approx(spec.started + 0.25)
    assert table(home, "SELECT key, value FROM params") == [("task", "nli")]


def test_odd_metric_lines_take_the_python_path(home: Path) -> None:
    """NaN (Python's json writes it), float steps and a log message quoting a metric event."""
    run_dir = home / "runs" / "20261130-100000-odd-b006"
    run_dir.mkdir(parents=True)
    rid = run_dir.name
    lines = [
        json.dumps({"ts": 1.0, "type": "run_started", "run_id": rid, "task": "nli", "config": {}}),
        json.dumps(
            {
                "ts": 2.0,
                "type": "metric",
                "run_id": rid,
                "key": "train/loss",
                "value": float("nan"),
                "step": 1,
                "context": "train",
            }
        ),
        json.dumps(
            {
                "ts": 3.0,
                "type": "metric",
                "run_id": rid,
                "key": "train/loss",
                "value": 0.5,
                "step": 2.0,
                "context": "train",
            }
        ),
        json.dumps({"ts": 4.0, "type": "log", "run_id": rid, "level": "info", "message": 'saw {"type": "metric"}'}),
        "{not json at all",
    ]
    (run_dir / "events.jsonl").write_text("\n".join(lines) + "\n")
    ingest_all(home)
    rows = table(home, "SELECT step, value FROM metrics ORDER BY step")
    assert rows[0][0] == 1 and math.isnan(rows[0][1])
    assert rows[1] == (2, 0.5)
    assert table(home, "SELECT message FROM logs") == [('saw {"type": "metric"}',)]


@pytest.mark.parametrize("kind", ["metric", "progress"])
def test_fast_path_matches_the_python_path(kind: str) -> None:
    """Arrow's rows equal the rows the per-event Python path builds from the same lines."""
    from stillhouse.registry import rows as R
    from stillhouse.registry.fastpath import metric_rows
    from stillhouse.registry.parse import metric_row
    from stillhouse.registry.redact import Redactor
    from stillhouse.registry.schema import arrow_schema

    events = [e for e in fabricate(FakeRun("r", seed=3, train_steps=30)).events if e["type"] == kind]
    events.append(
        {**events[-1], "ts": events[-1]["ts"] + 1, "total": 0} if kind == "progress" else {**events[-1], "step": None}
    )
    fast = metric_rows(kind, [json.dumps(e).encode() for e in events], "r", Redactor())
    build = metric_row if kind == "metric" else R.progress_row
    slow = pa.Table.from_pylist([build("r", e) for e in events], schema=arrow_schema("metrics"))
    assert fast.num_rows == len(events)
    assert fast.to_pylist() == slow.to_pylist()


def test_a_stale_plan_is_replanned_under_the_lock(home: Path) -> None:
    """Two processes plan the same new lines; the second to get the lock must not insert them again."""
    from stillhouse.registry.ingest import _write
    from stillhouse.registry.parse import plan_run
    from stillhouse.registry.redact import Redactor

    run_dir = write_run(home, FakeRun("20261130-100000-race-b007", seed=17))
    stale = plan_run(run_dir, None, Redactor())  # planned before anyone ingested
    ingest_run(run_dir)  # "another process" wins the race
    before = snapshot(home)
    assert _write(home, [stale], [], Redactor(), None) == 0
    assert snapshot(home) == before


def test_one_odd_run_does_not_spoil_the_batch(home: Path) -> None:
    """Runs are parsed in one Arrow pass per batch; a run Arrow cannot read (NaN loss) falls back
    on its own, and every run still gets exactly its rows."""
    good = write_run(home, FakeRun("20261130-100000-good-b008", seed=18, train_steps=6))
    odd = write_run(home, FakeRun("20261130-100000-odd-b009", seed=19, train_steps=6))
    append_jsonl(
        odd / "events.jsonl",
        [
            {
                "ts": 2e9,
                "type": "metric",
                "run_id": odd.name,
                "key": "train/loss",
                "value": float("nan"),
                "step": 7,
                "context": "train",
            }
        ],
    )
    ingest_all(home)
    for run_dir in (good, odd):
        lines = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
        expected = sum(e["type"] in ("metric", "progress") for e in lines)
        assert table(home, "SELECT count(*) FROM metrics WHERE run_id = ?", [run_dir.name]) == [(expected,)]
        newest = max(e["ts"] for e in lines)
        assert table(home, "SELECT epoch(updated_at) FROM runs WHERE run_id = ?", [run_dir.name])[0][
            0
        ] == pytest.approx(newest)
