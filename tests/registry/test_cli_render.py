"""How `still sql` and `still runs ...` tables read at a given terminal width, in a pipe, and with
hostile values (issue 18: readable output; issue 19: escape sequences shown, not obeyed)."""

from __future__ import annotations

import os
import pty
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from stillhouse.registry.db import QueryResult, read_query
from stillhouse.registry.render import cell, fit_columns, number, rounded_text
from stillhouse.testing.sample_runs import standard_runs

RUN_IDS = [spec.run_id for spec in standard_runs()]


@pytest.fixture
def at_width(still, filled_home: Path):
    def invoke(columns: int, *args: str):
        result = CliRunner().invoke(still, list(args), env={"COLUMNS": str(columns)})
        assert result.exit_code == 0, result.output
        return result.output

    return invoke


def _table(output: str) -> tuple[list[str], list[list[str]]]:
    """Header names and body rows of a rich table printed with the default box."""
    header = next(line for line in output.splitlines() if line.startswith("┃"))
    names = [c.strip() for c in header.strip("┃").split("┃")]
    rows = [[c.strip() for c in line.strip("│").split("│")] for line in output.splitlines() if line.startswith("│")]
    return names, rows


@pytest.mark.parametrize("width", [80, 160])
def test_sql_table_fits_the_terminal_and_shows_every_visible_value(at_width, filled_home: Path, width: int) -> None:
    output = at_width(width, "sql", "select * from run_summary", "--format", "table")
    assert all(len(line) <= width for line in output.splitlines()), output
    names, rows = _table(output)
    truth = read_query("select * from run_summary", home=filled_home, ingest=False)
    assert names == truth.columns[: len(names)] and len(names) >= 4
    hidden = len(truth.columns) - len(names)
    assert f"… {hidden} more columns: {truth.columns[len(names)]}" in output
    expected = {row[0]: [cell(v) for v in row] for row in truth.rows}
    assert sorted(r[0] for r in rows) == sorted(expected)  # run ids whole, one line each
    for row in rows:
        for shown, value in zip(row, expected[row[0]], strict=False):
            clipped = (shown.endswith("…") and value.startswith(shown[:-1])) or (
                shown.startswith("…/") and value.endswith(shown[1:])
            )
            assert shown == value or clipped, (shown, value)
    assert "10 rows" in output


def test_runs_list_keeps_run_ids_whole_at_80_columns(at_width) -> None:
    output = at_width(80, "runs", "list", "--format", "table")
    assert all(len(line) <= 80 for line in output.splitlines())
    names, rows = _table(output)
    assert names[:5] == ["run_id", "name", "task", "status", "score"]
    assert sorted(r[0] for r in rows) == sorted(RUN_IDS)
    assert "more columns: retention_pct" in output
    wide = at_width(240, "runs", "list", "--format", "table")
    assert "more columns" not in wide and "SmolLM2-135M-Instruct" in wide


def test_vertical_and_columns(at_width) -> None:
    query = "select * from run_summary where run_id = '20261120-090000-nli-mini-a001'"
    vertical = at_width(80, "sql", query, "--vertical").splitlines()
    assert vertical[0].startswith("── row 1 ")
    assert re.fullmatch(r"run_id +20261120-090000-nli-mini-a001", vertical[1])
    assert any(re.fullmatch(r"student_score +0\.87", line) for line in vertical)
    picked = at_width(80, "sql", query, "--columns", "student_score, run_id")
    assert picked == "student_score\trun_id\n0.87\t20261120-090000-nli-mini-a001\n"


def test_unknown_column_is_a_user_error(still, filled_home: Path) -> None:
    result = CliRunner().invoke(still, ["sql", "select 1 as a", "--columns", "b"])
    assert result.exit_code == 2 and "no column 'b'" in result.output and "columns: a" in result.output


def test_escape_sequences_are_shown_not_obeyed(at_width) -> None:
    query = "select chr(27) || '[31mred' || chr(10) || 'line' as name, '[bold]x' as markup"
    for output in (at_width(80, "sql", query, "--format", "table"), at_width(80, "sql", query)):
        assert "\x1b" not in output and "\\x1b[31mred\\nline" in output
        assert "[bold]x" in output  # rich markup in a value is text, not style


def test_numbers_are_rounded_for_reading_only(at_width) -> None:
    query = "select 0.16731363445141573 as score, 1234567.891 as big, 0.000123456 as small"
    assert at_width(80, "sql", query).splitlines()[1] == "0.1673\t1,234,568\t0.0001235"
    assert "0.16731363445141573" in at_width(80, "sql", query, "--format", "csv")
    assert '"score": 0.16731363445141573' in at_width(80, "sql", query, "--format", "json")


def test_rounding_helpers() -> None:
    assert [number(v) for v in (0.16731363445141573, 96.66666666, 2e-5, 1500.4)] == ["0.1673", "96.67", "2e-05", "1,500"]
    result = rounded_text(QueryResult(["metric", "a"], [("loss", "0.41923456789"), ("model", "gpt-4.1")]), ["a"])
    assert result.rows == [("loss", "0.4192"), ("model", "gpt-4.1")]


def test_fit_shrinks_named_columns_before_dropping_any() -> None:
    headers = ["id", "name", "n"]
    cells = [["x" * 20, "y" * 30, "1"]]
    layout = fit_columns(headers, cells, width=45, shrink={"name": 8})
    assert layout.shown == [0, 1, 2] and layout.widths[0] == 20 and 8 <= layout.widths[1] < 30
    assert fit_columns(headers, cells, width=30, shrink={"name": 8}).hidden == ["name", "n"]


def _still(*args: str) -> list[str]:
    return [sys.executable, "-c", "from stillhouse.kernel.cli import main; main()", *args]


def test_a_terminal_gets_a_table_and_a_pipe_gets_lines(filled_home: Path) -> None:
    """The real process: on a pseudo-terminal 80 columns wide a table that fits; piped, unwrapped lines."""
    env = {**os.environ, "STILLHOUSE_HOME": str(filled_home), "COLUMNS": "80"}
    query = "select * from run_summary order by run_id"
    piped = subprocess.run(_still("sql", query), capture_output=True, text=True, env=env, check=True).stdout
    lines = piped.splitlines()
    assert lines[0].startswith("run_id\tname\t") and len(lines) == 1 + len(RUN_IDS)
    assert [line.split("\t")[0] for line in lines[1:]] == sorted(RUN_IDS)
    main, child = pty.openpty()
    proc = subprocess.Popen(_still("sql", query), stdout=child, stderr=child, env=env)
    os.close(child)
    chunks = []
    while True:
        try:
            data = os.read(main, 65536)
        except OSError:  # the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    proc.wait(timeout=60)
    os.close(main)
    text = re.sub(r"\x1b\[[0-9;]*m", "", b"".join(chunks).decode())
    assert "┃ run_id" in text and "more columns" in text
    assert all(len(line) <= 80 for line in text.splitlines())
    assert all(run_id in text for run_id in RUN_IDS)


def test_runs_show_and_compare_say_distilled_and_sizes_for_people(at_width, filled_home) -> None:
    """Tables say "distilled" for the trained student (as the report and the TUI do) and give
    artifact sizes as sizes; --format json keeps the registry's names and exact bytes for scripts."""
    import json

    run_id, size = read_query("select run_id, bytes from artifacts where bytes > 1000000 order by run_id limit 1", home=filled_home).rows[0]
    shown = at_width(160, "runs", "show", run_id)
    assert "distilled_score" in shown and "distilled_vs_teacher_pct" in shown and "student_score" not in shown
    assert f"{size / 1e6:.1f} MB" in shown and str(size) not in shown
    data = json.loads(at_width(160, "runs", "show", run_id, "--format", "json"))
    assert size in [a["bytes"] for a in data["artifacts"]] and "student_score" in data["summary"]
    other = read_query("select run_id from runs where run_id <> ? and kind = 'pipeline' limit 1", [run_id], home=filled_home).rows[0][0]
    compared = at_width(160, "runs", "compare", run_id, other, "--format", "table")
    assert "│ distilled " in compared and "│ student " not in compared


def test_runs_list_keeps_task_names_whole_at_160_columns(at_width) -> None:
    table = at_width(160, "runs", "list", "--format", "table")
    assert "summarization" in table and "summar…" not in table
    assert all(len(line) <= 160 for line in table.splitlines())
