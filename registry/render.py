"""Printing query results: a rich table for people, CSV / JSON / Markdown for other programs."""

from __future__ import annotations

import csv
import io
import json
import math
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from stillhouse.registry.db import QueryResult

FORMATS = ("table", "csv", "json", "markdown")
_NUMERIC = (
    "TINYINT",
    "SMALLINT",
    "INTEGER",
    "BIGINT",
    "HUGEINT",
    "UTINYINT",
    "USMALLINT",
    "UINTEGER",
    "UBIGINT",
    "FLOAT",
    "DOUBLE",
    "DECIMAL",
    "NUMBER",
)


def cell(value: Any) -> str:
    """A value as people read it: NULL empty, floats to 6 significant digits, big ones grouped."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return str(value)
        if abs(value) >= 1e6:
            return f"{value:,.0f}"
        return f"{value:.6g}"
    if isinstance(value, datetime):
        return value.isoformat(sep=" ", timespec="seconds")
    return str(value)


def _plain(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None  # JSON has no NaN
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def to_json(result: QueryResult) -> str:
    return json.dumps(
        [{c: _plain(v) for c, v in zip(result.columns, row, strict=True)} for row in result.rows], indent=2
    )


def to_csv(result: QueryResult) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(result.columns)
    for row in result.rows:
        writer.writerow(["" if v is None else _plain(v) for v in row])
    return out.getvalue()


def to_markdown(result: QueryResult) -> str:
    def esc(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(esc(c) for c in result.columns) + " |"]
    lines.append("|" + "|".join("---:" if _is_numeric(t) else "---" for t in _types(result)) + "|")
    lines += ["| " + " | ".join(esc(cell(v)) for v in row) + " |" for row in result.rows]
    return "\n".join(lines) + "\n"


def _types(result: QueryResult) -> list[str]:
    return result.types if len(result.types) == len(result.columns) else [""] * len(result.columns)


def _is_numeric(type_name: str) -> bool:
    return type_name.upper().startswith(_NUMERIC)


def rich_table(result: QueryResult, title: str | None = None) -> Any:
    from rich.table import Table

    table = Table(title=title, header_style="bold", show_lines=False)
    for name, type_name in zip(result.columns, _types(result), strict=True):
        table.add_column(name, justify="right" if _is_numeric(type_name) else "left", overflow="fold")
    for row in result.rows:
        table.add_row(*[cell(v) for v in row])
    return table


def print_result(result: QueryResult, fmt: str = "table", title: str | None = None) -> None:
    """Write ``result`` to stdout in ``fmt`` (one of FORMATS)."""
    import click

    if fmt == "table":
        from rich.console import Console

        console = Console()
        console.print(rich_table(result, title))
        console.print(f"[dim]{len(result)} row{'s' if len(result) != 1 else ''}[/dim]")
    elif fmt == "csv":
        click.echo(to_csv(result), nl=False)
    elif fmt == "json":
        click.echo(to_json(result))
    else:
        click.echo(to_markdown(result), nl=False)
