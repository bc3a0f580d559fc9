"""The schema changes only through numbered migrations, and every column is documented."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from stillhouse.registry.db import db_path, read_query, write_connection
from stillhouse.registry.errors import RegistryVersionError
from stillhouse.registry.migrate import current_version, latest_version, migrate, migrations
from stillhouse.registry.schema import catalog


def test_migrations_are_numbered_without_gaps() -> None:
    assert [m.version for m in migrations()] == list(range(1, latest_version() + 1))
    assert latest_version() >= 2


def test_an_old_database_is_upgraded_in_place(home: Path) -> None:
    """A database left at version 1 (tables, no views) gets the later migrations on next open."""
    path = db_path(home)
    con = duckdb.connect(str(path))
    migrate(con, target=1)
    con.execute("INSERT INTO runs (run_id, task, status) VALUES ('old-run', 'nli', 'completed')")
    assert current_version(con) == 1
    con.close()
    rows = read_query("SELECT run_id, status FROM run_summary", home=home, ingest=False).rows
    assert rows == [("old-run", "completed")]
    versions = read_query("SELECT version FROM _migrations ORDER BY version", home=home, ingest=False).rows
    assert [v[0] for v in versions] == list(range(1, latest_version() + 1))


def test_applying_twice_is_a_no_op() -> None:
    con = duckdb.connect()
    assert migrate(con) == list(range(1, latest_version() + 1))
    assert migrate(con) == []


def test_a_database_from_a_newer_stillhouse_is_not_written(home: Path) -> None:
    with write_connection(home) as con:
        con.execute("INSERT INTO _migrations VALUES (999, 'future', now()::TIMESTAMP)")
    with pytest.raises(RegistryVersionError), write_connection(home):
        pass


def test_every_table_view_and_column_is_documented() -> None:
    names = {r.name for r in catalog()}
    required = {
        "runs",
        "params",
        "metrics",
        "teacher_calls",
        "samples",
        "evals",
        "artifacts",
        "plugins_used",
        "run_summary",
        "comparison",
        "metrics_latest",
    }
    assert required <= names
    for rel in catalog():
        assert rel.doc, rel.name
        for col in rel.columns:
            assert col.doc, f"{rel.name}.{col.name} has no COMMENT"


def test_issue_columns_exist() -> None:
    """The columns the issue asks for, at least."""
    columns = {r.name: {c.name for c in r.columns} for r in catalog()}
    assert {
        "run_id",
        "name",
        "task",
        "status",
        "teacher_model",
        "student_model",
        "created_at",
        "finished_at",
        "config_json",
        "config_hash",
    } <= columns["runs"]
    assert {"run_id", "key", "value"} <= columns["params"]
    assert {"run_id", "key", "step", "value", "ts"} <= columns["metrics"]
    assert {
        "run_id",
        "sample_id",
        "model",
        "cache_hit",
        "prompt_tokens",
        "completion_tokens",
        "cost_usd",
        "latency_ms",
        "error",
    } <= columns["teacher_calls"]
    assert {"run_id", "split", "sample_id", "accepted", "reason", "teacher_output", "target"} <= columns["samples"]
    assert {"run_id", "role", "metric", "value", "n"} <= columns["evals"]
    assert {"run_id", "name", "path", "bytes"} <= columns["artifacts"]
    assert {
        "task",
        "teacher_model",
        "student_model",
        "status",
        "samples_accepted",
        "samples_rejected",
        "teacher_calls",
        "cache_hit_rate",
        "cost_usd",
        "teacher_score",
        "baseline_score",
        "student_score",
        "retention_pct",
        "started_at",
        "finished_at",
    } <= columns["run_summary"]
