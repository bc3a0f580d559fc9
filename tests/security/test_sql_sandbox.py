"""`still sql` and the TUI's SQL screen are a sandbox (issue 19, "High").

Each attack from the issue runs through the CLI (the real `still` in-process, or a real subprocess
where the attack reads the process itself) and through the TUI's query function. DuckDB confines the
connection (no files, environment, extensions or settings) and the parser check is a second layer;
one test runs the attack on a sandboxed connection directly, past the parser, to show the first
layer holds on its own.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from stillhouse.kernel.errors import UserError
from stillhouse.registry.errors import QueryError, QueryTimeoutError, ReadOnlyQueryError
from stillhouse.testing.sample_runs import standard_runs, write_run
from stillhouse.tui.data import user_query

PLANTED_KEY = "sk-planted-0123456789abcdefSECRET"


@pytest.fixture
def home(stillhouse_home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("STILLHOUSE_REGISTRY_LOCK_TIMEOUT", "20")
    for spec in standard_runs()[:2]:
        write_run(stillhouse_home, spec)
    return stillhouse_home


@pytest.fixture
def secret_file(tmp_path: Path) -> Path:
    """A file the attacker wants (stands in for /etc/shadow, which a test cannot rely on)."""
    path = tmp_path / "secrets" / "shadow"
    path.parent.mkdir()
    path.write_text(f"root:{PLANTED_KEY}:19000:0:99999:7:::\n")
    return path


def sql_cli(run_still, *args: str):
    return run_still("sql", *args, env={"COLUMNS": "200"})


def assert_refused(result, *forbidden: str) -> None:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    for text in forbidden:
        assert text not in result.output


# -- writes -------------------------------------------------------------------------------------------


def explain_copy(victim: Path) -> str:
    return f"EXPLAIN ANALYZE COPY (SELECT 'pwned' AS l) TO '{victim}' (HEADER false)"


def test_explain_analyze_copy_does_not_write_a_file_cli(home: Path, tmp_path: Path, run_still) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    assert_refused(sql_cli(run_still, explain_copy(victim)))
    assert victim.read_text() == "precious\n"


def test_explain_analyze_copy_does_not_write_a_file_tui(home: Path, tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    with pytest.raises(ReadOnlyQueryError):
        user_query(explain_copy(victim), home=home)
    assert victim.read_text() == "precious\n"


def test_the_sandboxed_connection_alone_refuses_files_and_settings(home: Path, tmp_path: Path, secret_file: Path) -> None:
    """Layer one without layer two: statements the parser check would refuse, sent straight to
    the connection every user query runs on."""
    import duckdb

    from stillhouse.registry.db import read_connection

    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    attacks = [
        explain_copy(victim),
        f"COPY (SELECT 1) TO '{victim}'",
        f"ATTACH '{tmp_path / 'other.duckdb'}' AS o",
        f"SELECT * FROM read_text('{secret_file}')",
        "SET enable_external_access = true",
        "SET lock_configuration = false",
        "RESET enable_external_access",
        "SET memory_limit = '100GB'",
        "INSTALL httpfs",
        "SELECT getenv('OPENAI_API_KEY')",
    ]
    refused = 0
    with read_connection(home, sandbox=True) as con:
        for sql in attacks:
            with pytest.raises(duckdb.Error):
                con.execute(sql).fetchall()
            refused += 1
        settings = dict(
            con.execute(
                "SELECT name, value FROM duckdb_settings() WHERE name IN "
                "('enable_external_access', 'lock_configuration', 'autoinstall_known_extensions', "
                "'autoload_known_extensions', 'allow_community_extensions')"
            ).fetchall()
        )
    assert refused == len(attacks)
    assert victim.read_text() == "precious\n"
    assert settings == {
        "enable_external_access": "false",
        "lock_configuration": "true",
        "autoinstall_known_extensions": "false",
        "autoload_known_extensions": "false",
        "allow_community_extensions": "false",
    }


@pytest.mark.parametrize(
    "sql",
    [
        "EXPLAIN DELETE FROM runs",
        "/* hide */ EXPLAIN /* me */ ANALYZE INSERT INTO runs (run_id) VALUES ('x')",
        "EXPLAIN (FORMAT json) UPDATE runs SET status = 'completed'",
        "ATTACH ':memory:' AS m",
        "INSTALL httpfs",
        "LOAD httpfs",
        "SET enable_external_access = true",
        "RESET lock_configuration",
        "PRAGMA memory_limit = '100GB'",
        "PRAGMA enable_profiling",
        "PRAGMA import_database('/tmp')",
        "CALL pragma_version()",
    ],
)
def test_writes_settings_and_extensions_are_refused(home: Path, run_still, sql: str) -> None:
    assert_refused(sql_cli(run_still, sql))
    with pytest.raises(UserError):
        user_query(sql, home=home)


def test_reads_that_describe_the_registry_still_work(home: Path) -> None:
    assert user_query("EXPLAIN ANALYZE SELECT count(*) FROM runs", home=home).rows
    assert user_query("EXPLAIN (FORMAT json) SELECT * FROM runs", home=home).rows
    assert user_query("PRAGMA table_info('runs')", home=home).rows
    assert user_query("PRAGMA version", home=home).rows
    assert user_query("SELECT count(*) FROM runs", home=home).rows == [(2,)]


# -- reading files and the environment ----------------------------------------------------------------


def test_proc_self_environ_does_not_leak_a_planted_key_cli(home: Path) -> None:
    """A real `still sql` process with OPENAI_API_KEY in its environment (in-process, /proc/self/environ
    would hold pytest's start-up environment, not the planted key)."""
    still = Path(sys.executable).with_name("still")
    env = {**os.environ, "OPENAI_API_KEY": PLANTED_KEY, "STILLHOUSE_HOME": str(home), "COLUMNS": "200"}
    for sql in ("SELECT * FROM read_text('/proc/self/environ')", "SELECT getenv('OPENAI_API_KEY')"):
        done = subprocess.run(
            [str(still), "sql", sql, "--format", "csv"], env=env, capture_output=True, text=True, timeout=180
        )
        assert done.returncode == 2, done.stderr
        assert PLANTED_KEY not in done.stdout + done.stderr
        assert "Traceback" not in done.stderr


def test_proc_self_environ_is_refused_tui(home: Path) -> None:
    with pytest.raises(QueryError) as info:
        user_query("SELECT * FROM read_text('/proc/self/environ')", home=home)
    assert "disabled" in info.value.what


def file_reads(secret: Path) -> list[str]:
    return [
        "SELECT * FROM read_csv('/etc/passwd')",
        f"SELECT * FROM read_csv('{secret}', header = false)",
        f"SELECT content FROM read_blob('{secret}')",
        "SELECT content FROM read_blob('/etc/shadow')",
        f"SELECT * FROM glob('{secret.parent}/*')",
        "SELECT * FROM glob('/root/*')",
        f"SELECT * FROM read_parquet('{secret}')",
        f"SELECT * FROM '{secret}'",
    ]


def test_arbitrary_files_are_not_readable_cli(home: Path, secret_file: Path, run_still) -> None:
    for sql in file_reads(secret_file):
        result = sql_cli(run_still, sql, "--format", "csv")
        assert_refused(result, PLANTED_KEY, "root:x:0:0")
        if "Permission Error" in result.output:  # (FROM 'file' is an unknown table instead)
            assert "reads the registry only" in result.output


def test_arbitrary_files_are_not_readable_tui(home: Path, secret_file: Path) -> None:
    for sql in file_reads(secret_file):
        with pytest.raises(UserError) as info:
            user_query(sql, home=home)
        assert PLANTED_KEY not in info.value.what + " ".join(info.value.details or [])


# -- time and rows --------------------------------------------------------------------------------------

ENDLESS = "SELECT count(*) FROM range(100000000000)"  # range(1e11): DuckDB 2 wants an integer


def test_an_endless_query_is_stopped_by_the_timeout_cli(home: Path, run_still) -> None:
    result = sql_cli(run_still, ENDLESS, "--timeout", "1")
    assert_refused(result)
    assert "longer than 1 s" in result.output and "--timeout" in result.output


def test_an_endless_query_is_stopped_by_the_timeout_tui(home: Path) -> None:
    with pytest.raises(QueryTimeoutError):
        user_query("SELECT * FROM range(100000000000) ORDER BY range DESC", home=home, time_limit=1)


def test_an_endless_row_stream_is_limited_not_materialised(home: Path, run_still) -> None:
    result = sql_cli(run_still, "SELECT * FROM range(100000000000)", "--format", "csv", "--limit", "3")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == ["range", "0", "1", "2"]
    # Counting a hundred billion rows is over the count budget: said plainly, no number made up.
    assert "showing the first 3 rows; more exist (use --limit)" in result.stderr


def test_a_large_result_is_limited_with_a_count_cli(home: Path, run_still) -> None:
    result = sql_cli(run_still, "SELECT * FROM range(5000000)", "--format", "csv")
    assert result.exit_code == 0, result.output
    assert len(result.stdout.splitlines()) == 1 + 1000
    assert "showing 1,000 of 5,000,000 rows (use --limit)" in result.stderr
    small = sql_cli(run_still, "SELECT * FROM range(5)", "--format", "csv")
    assert small.stderr == "" and len(small.stdout.splitlines()) == 6


def test_a_large_result_is_limited_with_a_count_tui(home: Path) -> None:
    table = user_query("SELECT * FROM range(5000000)", home=home)
    assert len(table.rows) == 10_000
    assert table.note == "showing 10,000 of 5,000,000 rows"
    assert user_query("SELECT * FROM range(5)", home=home).note is None


def test_the_memory_cap_applies(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STILLHOUSE_SQL_MEMORY_LIMIT", "64MB")
    assert user_query("SELECT current_setting('memory_limit')", home=home).rows == [("61.0 MiB",)]
    with pytest.raises(QueryError) as info:
        user_query("SELECT len(list(range)) FROM range(50000000)", home=home)  # ~400 MB of integers
    assert "more memory than the cap of 64MB" in info.value.what
    assert "STILLHOUSE_SQL_MEMORY_LIMIT" in info.value.hint


# -- the TUI's SQL screen, end to end (Textual Pilot) -------------------------------------------------


def test_the_sql_screen_refuses_files_and_shows_the_row_limit(home: Path, tmp_path: Path) -> None:
    from textual.widgets import Static, TextArea

    from stillhouse.tui.app import StillhouseApp
    from stillhouse.tui.screens.sql import SqlScreen
    from tests.tui.helpers import drive, shows, wait_for

    app = StillhouseApp(home, clock=lambda: 1_800_000_000.0, poll_interval=0.2, examples_dir=tmp_path / "examples")

    async def scenario(pilot) -> None:
        await pilot.press("4")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, SqlScreen))
        screen = pilot.app.screen
        status = screen.query_one("#sql-status", Static)
        editor = screen.query_one(TextArea)
        editor.load_text("SELECT * FROM read_text('/proc/self/environ')")
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: status.has_class("error"))
        await shows(pilot, "disabled by configuration")
        editor.load_text("SELECT * FROM range(5000000)")
        await pilot.press("ctrl+r")
        await shows(pilot, "showing 10,000 of 5,000,000 rows")

    drive(app, scenario)
