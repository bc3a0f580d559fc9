"""read_query: read-only, parameterised, auto-ingesting, patient with a busy writer."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from stillhouse.kernel.errors import UserError
from stillhouse.registry.db import db_path, read_query, write_connection
from stillhouse.registry.errors import QueryError, ReadOnlyQueryError, RegistryLockError
from stillhouse.registry.migrate import latest_version
from stillhouse.testing.sample_runs import FakeRun, write_run


def test_query_ingests_first_and_binds_params(filled_home: Path) -> None:
    assert not db_path(filled_home).exists()
    result = read_query("SELECT run_id, task FROM runs WHERE task = ? ORDER BY run_id", ["qa"], home=filled_home)
    assert result.columns == ["run_id", "task"]
    assert result.types == ["VARCHAR", "VARCHAR"]
    assert [r[1] for r in result.rows] == ["qa", "qa"]
    assert result.dicts()[0]["task"] == "qa"
    assert len(result) == 2
    # a run written after the first query shows up in the next one
    write_run(filled_home, FakeRun("20261130-120000-late-d001", task="qa", seed=30))
    assert len(read_query("SELECT * FROM runs WHERE task = 'qa'", home=filled_home)) == 3
    assert len(read_query("SELECT * FROM runs WHERE task = 'qa'", home=filled_home, ingest=False)) == 3


def test_ingest_false_reads_what_is_there(filled_home: Path) -> None:
    assert read_query("SELECT count(*) FROM runs", home=filled_home, ingest=False).rows == [(0,)]
    assert db_path(filled_home).exists()  # created and migrated for the reader


@pytest.mark.parametrize(
    "sql",
    [
        "DELETE FROM runs",
        "INSERT INTO runs (run_id) VALUES ('x')",
        "UPDATE runs SET status = 'completed'",
        "DROP VIEW run_summary",
        "CREATE TABLE t (a INT)",
        "COPY runs TO '/tmp/stillhouse-copy.csv'",
        "ATTACH ':memory:' AS m",
        "SELECT 1; DELETE FROM runs",
    ],
)
def test_writes_are_refused_with_a_clear_message(filled_home: Path, sql: str) -> None:
    with pytest.raises(ReadOnlyQueryError) as info:
        read_query(sql, home=filled_home)
    assert isinstance(info.value, UserError) and info.value.exit_code == 2
    assert "read-only" in info.value.what


def test_reads_of_every_kind_are_allowed(filled_home: Path) -> None:
    assert read_query("DESCRIBE runs", home=filled_home).rows
    assert read_query("SHOW TABLES", home=filled_home).rows
    assert read_query("EXPLAIN SELECT * FROM run_summary", home=filled_home).rows
    assert read_query("PRAGMA table_info('metrics')", home=filled_home).rows
    assert read_query("SELECT 1 AS a; SELECT 2 AS b", home=filled_home).rows == [(2,)]


def test_bad_sql_is_a_user_error_with_a_hint(filled_home: Path) -> None:
    with pytest.raises(QueryError) as info:
        read_query("SELECT nope FROM runs", home=filled_home)
    assert "nope" in info.value.what and "--schema" in info.value.hint
    with pytest.raises(QueryError):
        read_query("SELEC 1", home=filled_home)
    with pytest.raises(QueryError):
        read_query("   ", home=filled_home)


HOLD_WRITER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from stillhouse.registry.db import write_connection
    with write_connection(Path(sys.argv[1])) as con:
        con.execute("INSERT INTO logs (run_id, message) VALUES ('held', 'held')")
        print("locked", flush=True)
        time.sleep(float(sys.argv[2]))
    """
)


def _hold(home: Path, seconds: float) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD_WRITER, str(home), str(seconds)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
    return proc


def test_reader_waits_for_a_writer_in_another_process(home: Path) -> None:
    with write_connection(home):
        pass
    holder = _hold(home, 1.0)
    try:
        # DuckDB refuses the read while the other process writes; read_query retries until it can
        rows = read_query("SELECT message FROM logs", home=home, ingest=False, timeout=20).rows
    finally:
        holder.wait(timeout=30)
    assert rows == [("held",)]


def test_lock_timeout_is_a_registry_error(home: Path) -> None:
    with write_connection(home):
        pass
    holder = _hold(home, 4.0)
    try:
        with pytest.raises(RegistryLockError) as info:
            read_query("SELECT 1", home=home, ingest=False, timeout=0.3)
        assert "Could not set lock" in info.value.details[0]
        # a reader's ingest that cannot get the lock is skipped, not fatal ... but the read also needs the file
        with pytest.raises(RegistryLockError):
            read_query("SELECT 1", home=home, timeout=0.3)
    finally:
        holder.wait(timeout=30)
    assert read_query("SELECT 1", home=home).rows == [(1,)]


def test_threads_in_one_process_share_the_file(filled_home: Path) -> None:
    """A TUI queries from worker threads while a hook ingests: DuckDB forbids a read-only and a
    read-write connection to one file in one process, so connections are serialised."""
    from stillhouse.registry.ingest import ingest_all

    errors: list[BaseException] = []

    def reader() -> None:
        try:
            for _ in range(15):
                read_query("SELECT count(*) FROM run_summary", home=filled_home, ingest=False)
        except BaseException as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)

    def writer() -> None:
        try:
            for i in range(5):
                write_run(filled_home, FakeRun(f"20261130-130000-thr-{i:04d}", seed=40 + i, samples=3, train_steps=3))
                ingest_all(filled_home)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=reader) for _ in range(3)] + [threading.Thread(target=writer)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    assert read_query("SELECT count(*) FROM runs WHERE run_id LIKE '%thr%'", home=filled_home).rows == [(5,)]


def test_migrations_are_recorded_in_order(home: Path) -> None:
    rows = read_query("SELECT version, name FROM _migrations ORDER BY applied_at, version", home=home).rows
    assert [r[0] for r in rows] == list(range(1, latest_version() + 1))
    assert rows[0][1] == "tables"
