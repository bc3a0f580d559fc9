"""`still sql`, `still runs ...`, `still registry ...` through the real `still` CLI (CliRunner)."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from stillhouse.registry.db import read_query
from stillhouse.testing.sample_runs import standard_runs

A, B = standard_runs()[0].run_id, standard_runs()[1].run_id


@pytest.fixture
def run(still, filled_home: Path):
    runner = CliRunner()

    def invoke(*args: str, input: str | None = None):
        return runner.invoke(still, list(args), input=input, env={"COLUMNS": "200"})

    return invoke


def test_sql_formats(run) -> None:
    query = (
        "select run_id, task, round(retention_pct, 2) as retention from run_summary where task = 'qa' order by run_id"
    )
    as_json = json.loads(run("sql", query, "--format", "json").output)
    assert as_json == [
        {"run_id": "20261123-090000-qa-a004", "task": "qa", "retention": 86.42},
        {"run_id": "20261128-090000-qa-live-a009", "task": "qa", "retention": None},
    ]
    rows = list(csv.reader(io.StringIO(run("sql", query, "--format", "csv").output)))
    assert rows == [
        ["run_id", "task", "retention"],
        ["20261123-090000-qa-a004", "qa", "86.42"],
        ["20261128-090000-qa-live-a009", "qa", ""],
    ]
    markdown = run("sql", query, "--format", "markdown").output.splitlines()
    assert markdown[0] == "| run_id | task | retention |" and markdown[1] == "|---|---|---:|"
    assert markdown[2] == "| 20261123-090000-qa-a004 | qa | 86.42 |"
    table = run("sql", query, "--format", "table")
    assert table.exit_code == 0 and "20261123-090000-qa-a004" in table.output and "2 rows" in table.output
    # Not a terminal (CliRunner, a pipe, a file): tab-separated lines, nothing wrapped or boxed.
    assert run("sql", query).output == (
        "run_id\ttask\tretention\n20261123-090000-qa-a004\tqa\t86.42\n20261128-090000-qa-live-a009\tqa\t\n"
    )


def test_sql_from_stdin(run) -> None:
    result = run("sql", "-", "--format", "csv", input="select count(*) as n from runs")
    assert result.output == f"n\n{len(standard_runs())}\n"


def test_sql_refuses_writes_with_exit_2(run) -> None:
    result = run("sql", "delete from runs")
    assert result.exit_code == 2
    assert "read-only" in result.output and "Traceback" not in result.output
    assert run("sql", "select count(*) from runs", "--format", "csv").output.splitlines()[1] == str(
        len(standard_runs())
    )


def test_sql_errors_are_rendered(run) -> None:
    result = run("sql", "select nope from runs")
    assert result.exit_code == 2 and "Query failed" in result.output and "nope" in result.output
    assert run("sql").exit_code == 2


def test_sql_schema(run) -> None:
    from stillhouse.registry.schema import catalog, schema_markdown

    assert run("sql", "--schema", "--format", "markdown").output == schema_markdown()
    listed = json.loads(run("sql", "--schema", "--format", "json").output)
    assert [r["name"] for r in listed] == [r.name for r in catalog()]
    table = run("sql", "--schema").output
    assert "run_summary" in table and "retention_pct" in table


def test_runs_list_filters(run) -> None:
    rows = json.loads(run("runs", "list", "--task", "nli", "--format", "json").output)
    assert {r["task"] for r in rows} == {"nli"} and len(rows) == 5
    assert [r["started_at"] for r in rows] == sorted((r["started_at"] for r in rows), reverse=True)
    failed = json.loads(run("runs", "list", "--status", "failed", "--format", "json").output)
    assert [r["run_id"] for r in failed] == ["20261127-090000-nli-fail-a008"]
    assert len(json.loads(run("runs", "list", "--limit", "3", "--format", "json").output)) == 3


def test_runs_show(run) -> None:
    data = json.loads(run("runs", "show", "a001", "--format", "json").output)  # a unique part of the id
    assert data["summary"]["run_id"] == A and data["summary"]["student_score"] == 0.87
    assert [s["stage"] for s in data["stages"]] == ["generate", "filter", "train", "evaluate", "report"]
    assert data["evaluation"][0]["metric"] == "accuracy"  # the primary metric first
    assert {r["reason"] for r in data["rejections"]} <= {"wrong_label", "unparseable"}
    assert "config" not in data
    text = run("runs", "show", A).output
    assert "Stages" in text and "Evaluation" in text and "retention_pct" in text
    config = json.loads(run("runs", "show", A, "--config", "--format", "json").output)["config"]
    assert {"key": "train.learning_rate", "value": "2e-05"} in config
    failed = run("runs", "show", "nli-fail").output
    assert "CUDA out of memory" in failed


def test_runs_show_unknown_or_ambiguous(run) -> None:
    missing = run("runs", "show", "no-such-run")
    assert missing.exit_code == 2 and "Run not found" in missing.output
    ambiguous = run("runs", "show", "nli")
    assert ambiguous.exit_code == 2 and "matches" in ambiguous.output


def test_runs_compare(run) -> None:
    data = json.loads(run("runs", "compare", A, B, "--format", "json").output)
    diff = {row["key"]: (row["a"], row["b"]) for row in data["config"]}
    assert diff["train.learning_rate"] == ("2e-05", "0.0001")
    assert diff["name"] == ("nli-mini", "nli-lr")
    assert "teacher.model" not in diff  # equal values are not a difference
    metrics = {(m["metric"], m["role"]): (m["a"], m["b"]) for m in data["metrics"]}
    assert metrics[("accuracy", "student")] == ("0.87", "0.78")
    assert metrics[("student_score", "run")] == ("0.87", "0.78")
    text = run("runs", "compare", A, B, "--format", "table").output
    assert "Config differences" in text and "learning_rate" in text
    assert "135,000,000" in text and not re.search(r"\.0*[1-9]\d{5}", text)  # numbers rounded for reading


def test_runs_rm_asks_and_removes(run, filled_home: Path) -> None:
    folder = filled_home / "runs" / B
    declined = run("runs", "rm", B, input="n\n")
    assert declined.exit_code != 0 and folder.is_dir()
    result = run("runs", "rm", B, input="y\n")
    assert result.exit_code == 0, result.output
    assert not folder.exists()
    assert read_query("select count(*) from params where run_id = ?", [B], home=filled_home).rows == [(0,)]
    assert run("runs", "rm", A, "--yes").exit_code == 0
    assert read_query("select count(*) from runs", home=filled_home).rows == [(len(standard_runs()) - 2,)]


def test_runs_rm_refuses_a_live_run(run, filled_home: Path) -> None:
    import os
    import time

    from stillhouse.kernel.runs import append_jsonl

    live = standard_runs()[8]  # status running
    append_jsonl(
        filled_home / "runs" / live.run_id / "events.jsonl",
        # written now by this process: liveness checks the pid's process started before the event
        [{"ts": time.time(), "type": "run_started", "run_id": live.run_id, "task": "qa", "pid": os.getpid()}],
    )
    refused = run("runs", "rm", live.run_id, "--yes")
    assert refused.exit_code == 2 and "is running" in refused.output
    assert run("runs", "rm", live.run_id, "--yes", "--force").exit_code == 0


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_export_import_round_trip(
    run, filled_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str
) -> None:
    from stillhouse.registry.schema import public_tables

    out = tmp_path / "export"
    result = run("registry", "export", str(out), "--format", fmt)
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["tables"]["runs"] == len(standard_runs())
    assert run("registry", "export", str(out)).exit_code == 2  # not empty

    def dump(home: Path) -> dict[str, list]:
        return {
            t: sorted(
                read_query(f"select * exclude (run_id) , run_id from {t}", home=home, ingest=False).rows, key=repr
            )
            for t in public_tables()
            if t != "runs"
        }

    original = dump(filled_home)
    other = tmp_path / "other-home"
    other.mkdir()
    monkeypatch.setenv("STILLHOUSE_HOME", str(other))
    result = run("registry", "import", str(out))
    assert result.exit_code == 0, result.output
    assert f"Imported {len(standard_runs())} runs" in result.output
    assert dump(other) == original
    assert read_query("select count(*) from runs where run_dir is null", home=other).rows == [(len(standard_runs()),)]
    # importing again changes nothing; an ingest does not drop imported runs (they have no folder)
    assert "Imported 0 runs" in run("registry", "import", str(out)).output
    assert run("registry", "ingest").exit_code == 0
    assert dump(other) == original


def test_registry_ingest_rebuild(run, filled_home: Path) -> None:
    first = run("registry", "ingest")
    assert first.exit_code == 0 and "Ingested" in first.output
    assert "Ingested 0 rows" in run("registry", "ingest").output
    rebuilt = run("registry", "ingest", "--rebuild")
    assert rebuilt.output.split()[1] == first.output.split()[1]  # same number of rows again


def test_import_rejects_a_non_export(run, tmp_path: Path) -> None:
    result = run("registry", "import", str(tmp_path))
    assert result.exit_code == 2 and "manifest.json" in result.output


def test_still_help_stays_light() -> None:
    """`still --help` imports the registry plugin and its commands, but not DuckDB or Arrow."""
    import subprocess
    import sys

    code = (
        "import sys; from click.testing import CliRunner; from stillhouse.kernel.cli import build_cli; "
        "assert CliRunner().invoke(build_cli(), ['--help']).exit_code == 0; "
        "import stillhouse.registry.plugin, stillhouse.registry.cli; "
        "print(sorted(m for m in ('duckdb', 'pyarrow', 'numpy', 'rich', 'textual', 'torch') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_module_entry_point_without_the_kernel_cli(filled_home: Path) -> None:
    """`python -m stillhouse.registry` serves the same commands (and renders errors the same way)."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "STILLHOUSE_HOME": str(filled_home)}
    ok = subprocess.run(
        [sys.executable, "-m", "stillhouse.registry", "sql", "select count(*) n from runs", "--format", "csv"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert ok.returncode == 0 and ok.stdout == f"n\n{len(standard_runs())}\n"
    refused = subprocess.run(
        [sys.executable, "-m", "stillhouse.registry", "sql", "drop table runs"], capture_output=True, text=True, env=env
    )
    assert refused.returncode == 2 and "read-only" in refused.stderr


def test_runs_prune_frees_checkpoints_and_old_failed_runs(run, filled_home: Path) -> None:
    import os

    from stillhouse.kernel.runs import RunLock, append_jsonl

    done, failed, live = standard_runs()[0], standard_runs()[7], standard_runs()[8]
    checkpoint = filled_home / "runs" / done.run_id / "checkpoints" / "checkpoint-4"
    checkpoint.mkdir(parents=True)
    (checkpoint / "optimizer.pt").write_bytes(b"x" * 2_000_000)
    (filled_home / "runs" / done.run_id / "student").mkdir()
    live_checkpoints = filled_home / "runs" / live.run_id / "checkpoints"
    live_checkpoints.mkdir(parents=True)
    append_jsonl(
        filled_home / "runs" / live.run_id / "events.jsonl",
        [{"ts": live.started + 5000, "type": "run_started", "run_id": live.run_id, "task": "qa", "pid": os.getpid()}],
    )
    # a live run holds its run folder's lock (kernel.runs.RunLock), as `still run` does
    lock = RunLock(filled_home / "runs" / live.run_id).acquire()
    try:
        declined = run("runs", "prune", input="n\n")
    finally:
        lock.release()
    assert declined.exit_code != 0 and checkpoint.exists()
    assert f"skip    {live.run_id} (running)" in declined.output
    assert "2.0 MB" in declined.output and failed.run_id not in declined.output  # failed, but not 30 days ago
    result = run("runs", "prune", "--failed-older-than", "5", "--yes")  # it ended 2026-11-27
    assert result.exit_code == 0, result.output
    assert not checkpoint.parent.exists() and (filled_home / "runs" / done.run_id / "student").is_dir()
    assert not (filled_home / "runs" / failed.run_id).exists() and live_checkpoints.is_dir()
    assert read_query("select count(*) from runs where run_id = ?", [failed.run_id], home=filled_home).rows == [(0,)]
    assert "Freed" in result.output
    assert "Nothing to prune." in run("runs", "prune", "--yes").output
