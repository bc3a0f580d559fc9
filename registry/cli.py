"""`still sql`, `still runs ...` and `still registry ...`.

Module-level imports stay light (click only): `still --help` imports this. DuckDB, rich and the
registry internals are imported inside the commands. The SQL lives in ``registry/queries.py``; this
module parses options and prints.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

import click

from stillhouse.kernel.errors import RunNotFoundError, UserError

FORMAT_CHOICE = click.Choice(["table", "tsv", "csv", "json", "markdown"])
FORMAT_HELP = "Output format [default: table on a terminal, tsv (tab-separated lines) in a pipe or file]."
SQL_ROW_LIMIT = 1000
SQL_TIMEOUT_S = 30.0


def _print(result: Any, fmt: str | None, title: str | None = None, **options: Any) -> None:
    from stillhouse.registry.render import print_result

    print_result(result, fmt, title, **options)


def _column_list(value: str | None) -> list[str]:
    return [c.strip() for c in (value or "").split(",") if c.strip()]


# -- still sql -------------------------------------------------------------------------------------


@click.command("sql")
@click.argument("query", required=False)
@click.option("--format", "fmt", type=FORMAT_CHOICE, default=None, help=FORMAT_HELP)
@click.option("--vertical", "-x", is_flag=True, help="One block per row, one line per column (for wide rows).")
@click.option("--columns", "columns", metavar="A,B", help="Show only these columns, in this order.")
@click.option("--schema", is_flag=True, help="Print the documented tables, views and columns.")
@click.option("--no-ingest", is_flag=True, help="Query the database as it is, without reading new run-folder content.")
@click.option(
    "--limit",
    "max_rows",
    type=click.IntRange(min=0),
    default=SQL_ROW_LIMIT,
    show_default=True,
    help="Print at most N rows (0: all); a line on stderr says how many there were.",
)
@click.option(
    "--timeout",
    "time_limit",
    type=click.FloatRange(min=0),
    default=SQL_TIMEOUT_S,
    show_default=True,
    help="Stop the query after SECONDS (0: no limit).",
)
def sql_command(
    query: str | None,
    fmt: str | None,
    vertical: bool,
    columns: str | None,
    schema: bool,
    no_ingest: bool,
    max_rows: int,
    time_limit: float,
) -> None:
    """Query the run registry with read-only SQL (DuckDB dialect).

    \b
    Examples:
      still sql "select run_id, task, student_score, retention_pct from run_summary"
      still sql "select * from run_summary" --vertical
      still sql "select * from metrics where key = 'train/loss'" --format csv > loss.csv
      echo "select count(*) from runs" | still sql -

    A table shows the columns that fit the terminal and names the rest; numbers are rounded for
    reading (csv and json keep full precision).
    """
    if schema:
        _print_schema(fmt or "table")
        return
    if not query:
        raise UserError("no query given", hint='still sql "select * from run_summary", or still sql --schema')
    if query == "-":
        query = sys.stdin.read()
    from stillhouse.registry.queries import read_query

    # Queries run in DuckDB's sandbox (no files, network, extensions or settings: registry/db.py),
    # with a row limit and a time limit so a runaway query cannot hold the terminal or the memory.
    result = read_query(query, ingest=not no_ingest, max_rows=max_rows or None, time_limit=time_limit or None)
    _print(result, fmt, vertical=vertical, columns=_column_list(columns))
    note = result.limit_note()
    if note:
        click.echo(note, err=True)


def _print_schema(fmt: str) -> None:
    from stillhouse.registry import schema

    if fmt == "markdown":
        click.echo(schema.schema_markdown(), nl=False)
        return
    if fmt == "json":
        click.echo(json.dumps(schema.schema_dict(), indent=2))
        return
    if fmt in ("csv", "tsv"):
        import csv

        writer = csv.writer(sys.stdout, lineterminator="\n", delimiter="," if fmt == "csv" else "\t")
        writer.writerow(["relation", "kind", "column", "type", "meaning"])
        for rel in schema.catalog():
            for col in rel.columns:
                writer.writerow([rel.name, rel.kind, col.name, col.type, col.doc])
        return
    from rich.console import Console
    from rich.table import Table

    console = Console()
    for rel in schema.catalog():
        table = Table(title=f"{rel.name} ({rel.kind}): {rel.doc}", title_justify="left", header_style="bold")
        table.add_column("column", no_wrap=True)
        table.add_column("type", no_wrap=True)
        table.add_column("meaning", overflow="fold")
        for col in rel.columns:
            table.add_row(col.name, col.type, col.doc)
        console.print(table)


# -- still runs --------------------------------------------------------------------------------------


@click.group("runs")
def runs_group() -> None:
    """List, inspect, compare and remove runs (from the registry)."""


@runs_group.command("list")
@click.option("--task", help="Only runs of this task.")
@click.option("--status", help="Only runs with this status (running, completed, incomplete, failed, interrupted, dead).")
@click.option("--limit", type=int, default=50, show_default=True, help="Newest N runs; 0 for all.")
@click.option("--format", "fmt", type=FORMAT_CHOICE, default=None, help=FORMAT_HELP)
@click.option("--columns", "columns", metavar="A,B", help="Show only these columns, in this order.")
def runs_list(task: str | None, status: str | None, limit: int, fmt: str | None, columns: str | None) -> None:
    """Runs, newest first.

    A narrow terminal shortens names and drops the rightmost columns; the run id is always whole.
    """
    from stillhouse.registry.queries import run_list
    from stillhouse.registry.render import terminal_width

    # A task name is short and says what a run is: only a narrow terminal cuts it (at 160 columns
    # "summar…" was cut to fit one more column on the right).
    shrink = RUNS_LIST_SHRINK if terminal_width() < WHOLE_TASK_FROM else {k: v for k, v in RUNS_LIST_SHRINK.items() if k != "task"}
    _print(run_list(task=task, status=status, limit=limit), fmt, columns=_column_list(columns), shrink=shrink)


# How narrow `still runs list` may cut these columns before it drops any.
RUNS_LIST_SHRINK = {"name": 10, "task": 6, "teacher_model": 12, "student_model": 12}
WHOLE_TASK_FROM = 100  # terminal columns


def resolve_run_id(run_id: str, *, ingest: bool = True) -> str:
    """An exact run id, or the single run whose id contains ``run_id``; an empty or path-like id is
    refused (an empty one is contained in every id)."""
    from stillhouse.kernel.runs import check_run_id
    from stillhouse.registry.queries import matching_run_ids

    check_run_id(run_id)
    rows = matching_run_ids(run_id, ingest=ingest)
    if rows and (rows[0] == run_id or len(rows) == 1):
        return rows[0]
    if rows:
        raise RunNotFoundError(f"'{run_id}' matches {len(rows)} runs", hint="candidates: " + ", ".join(rows[:5]))
    raise RunNotFoundError(f"no run '{run_id}' in the registry", hint="see `still runs list`")


@runs_group.command("show")
@click.argument("run_id")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option("--config", "with_config", is_flag=True, help="Also list the resolved config, one row per key.")
def runs_show(run_id: str, fmt: str, with_config: bool) -> None:
    """Everything the registry knows about one run."""
    from stillhouse.registry.queries import run_details

    rid = resolve_run_id(run_id)
    sections = run_details(rid, with_config=with_config, ingest=False).sections()
    if fmt == "json":
        from stillhouse.registry.render import json_value

        data: dict[str, Any] = {name: [json_value(d) for d in result.dicts()] for name, result in sections}
        data["summary"] = data["summary"][0] if data["summary"] else {}
        click.echo(json.dumps(data, indent=2))
        return
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from stillhouse.registry.render import FOR_PEOPLE, cell, drop_empty_columns, for_people, print_table

    console = Console(soft_wrap=False)
    summary = sections[0][1].dicts()[0]
    card = Table(title=f"Run {rid}", show_header=False, title_justify="left")
    card.add_column("field", style="bold", no_wrap=True)
    card.add_column("value", overflow="fold")
    for key, value in summary.items():
        if value is not None and key != "run_id":
            card.add_row(FOR_PEOPLE.get(key, key), Text(cell(value)))
    console.print(card)
    for name, result in sections[1:]:
        if len(result):
            print_table(for_people(drop_empty_columns(result)), RUN_SECTION_TITLES[name], footer=False)


# The titles `still runs show` prints above each aspect of a run (queries.RunDetails).
RUN_SECTION_TITLES = {
    "stages": "Stages",
    "evaluation": "Evaluation",
    "exports": "Exported student (evaluate.export): each metric beside the distilled student's",
    "training": "Training metrics (latest)",
    "rejections": "Rejected samples",
    "artifacts": "Artifacts",
    "problems": "Warnings and errors",
    "config": "Config",
}


@runs_group.command("compare")
@click.argument("run_a")
@click.argument("run_b")
@click.option("--format", "fmt", type=FORMAT_CHOICE, default=None, help=FORMAT_HELP)
def runs_compare(run_a: str, run_b: str, fmt: str | None) -> None:
    """Config differences and metrics of two runs side by side."""
    from stillhouse.registry.queries import config_differences, metric_comparison

    a, b = resolve_run_id(run_a), resolve_run_id(run_b, ingest=False)
    config = config_differences(a, b, ingest=False)
    metrics = metric_comparison(a, b, ingest=False)
    from stillhouse.registry.render import default_format

    fmt = fmt or default_format()
    if fmt != "table":
        from stillhouse.registry.render import json_value

        if fmt == "json":
            click.echo(
                json.dumps(
                    {"a": a, "b": b, "config": json_value(config.dicts()), "metrics": json_value(metrics.dicts())},
                    indent=2,
                )
            )
        else:
            from stillhouse.registry.render import rounded_text

            click.echo(f"config differences (a = {a}, b = {b})")
            _print(config, fmt)
            click.echo("metrics")
            _print(rounded_text(metrics, ("a", "b")) if fmt in ("tsv", "markdown") else metrics, fmt)
        return
    from rich.console import Console

    from stillhouse.registry.render import for_people, print_table, rounded_text

    console = Console(soft_wrap=False)
    console.print(f"[bold]a[/bold] = {a}\n[bold]b[/bold] = {b}", highlight=False)
    if len(config):
        print_table(config, "Config differences", footer=False)
    else:
        console.print("[dim]The configs are identical.[/dim]")
    print_table(for_people(rounded_text(metrics, ("a", "b"))), "Metrics", footer=False)


@runs_group.command("rm")
@click.argument("run_id")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.option("--force", is_flag=True, help="Remove even if the run looks alive (its process still exists).")
def runs_rm(run_id: str, yes: bool, force: bool) -> None:
    """Delete a run: its folder and its rows in the registry."""
    from stillhouse.kernel.runs import lock_holder, run_folder, run_process_alive
    from stillhouse.registry.ingest import delete_runs
    from stillhouse.registry.queries import run_process

    rid = resolve_run_id(run_id)
    process = run_process(rid, ingest=False)
    # The id came from the registry, which `still registry import` can fill: it must still name a
    # folder directly under runs/ before anything is deleted.
    folder = run_folder(rid)
    holder = lock_holder(folder) if folder.is_dir() else None
    if holder and not force:
        raise UserError(f"run {rid} is in use by process {holder}", hint="stop it first")
    pid = process.pid if process and process.status == "running" else None
    if pid and folder.is_dir() and run_process_alive(folder, pid) and not force:
        raise UserError(
            f"run {rid} is running (process {pid})", hint="stop it first, or pass --force if that process is not it"
        )
    what = f"run {rid}" + (f" and its folder {folder}" if folder.is_dir() else " (registry rows only: no folder)")
    if not yes and not click.confirm(f"Delete {what}?", default=False):
        raise click.Abort()
    if folder.is_dir():
        shutil.rmtree(folder)
    delete_runs([rid])
    click.echo(f"Deleted {what}.")


@runs_group.command("prune")
@click.option(
    "--failed-older-than",
    "days",
    type=click.FloatRange(min=0),
    default=30,
    show_default=True,
    metavar="DAYS",
    help="Delete failed and interrupted runs that ended more than DAYS ago.",
)
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
def runs_prune(days: float, yes: bool) -> None:
    """Free disk space: checkpoints of completed runs (their student stays), and failed or
    interrupted runs older than DAYS (folder and registry rows). Live runs are never touched."""
    import time

    from stillhouse.kernel.housekeeping import folder_bytes, human_bytes
    from stillhouse.kernel.runs import run_process_alive, runs_root
    from stillhouse.registry.ingest import delete_runs
    from stillhouse.registry.queries import run_endings

    root, cutoff = runs_root(), time.time() - days * 86400
    checkpoints: list[tuple[str, Path]] = []
    old_runs: list[tuple[str, Path]] = []
    live = []
    for run in run_endings():
        folder = root / run.run_id
        if run.status in ("running", "created") and run.pid and run_process_alive(folder, run.pid):
            live.append(run.run_id)
        elif run.status == "completed" and (folder / "checkpoints").is_dir():
            checkpoints.append((run.run_id, folder / "checkpoints"))
        elif run.status in ("failed", "interrupted") and run.ended is not None and run.ended < cutoff:
            old_runs.append((run.run_id, folder))
    sizes = {path: folder_bytes(path) for _, path in checkpoints + old_runs}
    total = sum(sizes.values())
    for run_id in live:
        click.echo(f"skip    {run_id} (running)")
    for run_id, path in checkpoints:
        click.echo(f"free    {human_bytes(sizes[path]):>9}  {run_id}: checkpoints (completed; its student stays)")
    for run_id, path in old_runs:
        click.echo(f"delete  {human_bytes(sizes[path]):>9}  {run_id}: the whole run (ended more than {days:g} days ago)")
    if not checkpoints and not old_runs:
        click.echo("Nothing to prune.")
        return
    if not yes and not click.confirm(f"Free {human_bytes(total)}?", default=False):
        raise click.Abort()
    for _, path in checkpoints + old_runs:
        shutil.rmtree(path, ignore_errors=True)
    if old_runs:
        delete_runs([run_id for run_id, _ in old_runs])
    click.echo(f"Freed {human_bytes(total)}.")


# -- still registry -----------------------------------------------------------------------------------


@click.group("registry")
def registry_group() -> None:
    """The DuckDB run registry: ingest, export, import."""


@registry_group.command("export")
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["parquet", "csv"]), default="parquet", show_default=True)
def registry_export(folder: Path, fmt: str) -> None:
    """Write every table to FOLDER (one file per table + manifest.json)."""
    from stillhouse.registry.export import export_registry

    manifest = export_registry(folder, fmt)
    total = sum(manifest["tables"].values())
    click.echo(f"Exported {manifest['tables'].get('runs', 0)} runs ({total} rows) to {folder} as {fmt}.")


@registry_group.command("import")
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
def registry_import(folder: Path) -> None:
    """Merge an export folder into this registry (runs already here are skipped)."""
    from stillhouse.registry.export import import_registry

    summary = import_registry(folder)
    click.echo(
        f"Imported {len(summary.imported)} runs ({summary.rows} rows); skipped {len(summary.skipped)} already present."
    )


@registry_group.command("ingest")
@click.option("--rebuild", is_flag=True, help="Forget what was ingested and read every run folder again.")
def registry_ingest(rebuild: bool) -> None:
    """Read new run-folder content into the registry now (queries do this on their own)."""
    from stillhouse.registry.db import db_path
    from stillhouse.registry.ingest import forget_ingested, ingest_all

    if rebuild:
        forget_ingested()
    rows = ingest_all()
    click.echo(f"Ingested {rows} rows into {db_path()}.")


COMMANDS = (sql_command, runs_group, registry_group)


def add_commands(cli: click.Group) -> None:
    for command in COMMANDS:
        cli.add_command(command)
