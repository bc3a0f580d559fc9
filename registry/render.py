"""Printing query results: a table that fits the terminal for people; TSV / CSV / JSON / Markdown for
other programs.

A table never wraps a value: the columns that fit are shown whole (a value longer than
``MAX_CELL`` ends in "…") and the rest are named in a "… N more columns" line, as the duckdb CLI
does. Output that is not a terminal gets tab-separated lines instead (run ids stay copyable and
``grep``/``cut`` work); ``--format csv``/``json`` keep full precision.
"""

from __future__ import annotations

import csv
import io
import json
import math
import shutil
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from stillhouse.kernel.errors import UserError
from stillhouse.kernel.text import visible
from stillhouse.registry.db import QueryResult

FORMATS = ("table", "tsv", "csv", "json", "markdown")
MAX_CELL = 48  # a longer value is cut in a table (never in tsv/csv/json)
_GAP = 3  # rich's " │ " between columns
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


def number(value: float) -> str:
    """A float as people read it: 4 significant digits, whole numbers from 1000 up, grouped."""
    if math.isnan(value) or math.isinf(value):
        return str(value)
    if abs(value) >= 1000:
        return f"{round(value):,}"
    return f"{value:.4g}"


def cell(value: Any) -> str:
    """A value as one line of a table: NULL empty, floats rounded, control characters escaped."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return number(value)
    if isinstance(value, Decimal):
        return number(float(value))
    if isinstance(value, datetime):
        return value.isoformat(sep=" ", timespec="seconds")
    return visible(str(value))


def json_value(value: Any) -> Any:
    """``value`` as JSON can hold it: times as ISO text, decimals as floats, NaN as null."""
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None  # JSON has no NaN
    if isinstance(value, (list, tuple)):
        return [json_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): json_value(v) for k, v in value.items()}
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def select_columns(result: QueryResult, names: Sequence[str]) -> QueryResult:
    """Only the columns ``names``, in that order (``--columns a,b``)."""
    missing = [n for n in names if n not in result.columns]
    if missing:
        raise UserError(
            f"no column {', '.join(repr(n) for n in missing)} in the result",
            hint="columns: " + ", ".join(result.columns),
        )
    index = [result.columns.index(n) for n in names]
    types = _types(result)
    return QueryResult(
        list(names), [tuple(row[i] for i in index) for row in result.rows], [types[i] for i in index]
    )


def to_json(result: QueryResult) -> str:
    return json.dumps(
        [{c: json_value(v) for c, v in zip(result.columns, row, strict=True)} for row in result.rows], indent=2
    )


def to_csv(result: QueryResult) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(result.columns)
    for row in result.rows:
        writer.writerow(["" if v is None else json_value(v) for v in row])
    return out.getvalue()


def to_tsv(result: QueryResult) -> str:
    """One line per row, tab-separated, values as a table shows them but never cut (for pipes)."""
    lines = ["\t".join(visible(c) for c in result.columns)]
    lines += ["\t".join(cell(v) for v in row) for row in result.rows]
    return "\n".join(lines) + "\n"


def to_markdown(result: QueryResult) -> str:
    def esc(text: str) -> str:
        return text.replace("|", "\\|")

    lines = ["| " + " | ".join(esc(visible(c)) for c in result.columns) + " |"]
    lines.append("|" + "|".join("---:" if _is_numeric(t) else "---" for t in _types(result)) + "|")
    lines += ["| " + " | ".join(esc(cell(v)) for v in row) + " |" for row in result.rows]
    return "\n".join(lines) + "\n"


def to_vertical(result: QueryResult) -> str:
    """One block per row, one line per column (``--vertical``, like psql's expanded display)."""
    names = [visible(c) for c in result.columns]
    pad = max((len(n) for n in names), default=0)
    blocks = []
    for number_, row in enumerate(result.rows, 1):
        lines = [f"── row {number_} " + "─" * max(0, pad - 4)]
        lines += [f"{n:<{pad}}  {cell(v)}" for n, v in zip(names, row, strict=True)]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + ("\n" if blocks else "")


def _types(result: QueryResult) -> list[str]:
    return result.types if len(result.types) == len(result.columns) else [""] * len(result.columns)


def _is_numeric(type_name: str) -> bool:
    return type_name.upper().startswith(_NUMERIC)


@dataclass
class Layout:
    """Which columns a table shows, and how wide each is."""

    shown: list[int]
    widths: dict[int, int]
    hidden: list[str]


def fit_columns(
    headers: Sequence[str],
    cells: Sequence[Sequence[str]],
    width: int,
    shrink: Mapping[str, int] | None = None,
) -> Layout:
    """The leading columns that fit in ``width`` terminal columns.

    Each column is as wide as its header and values (at most MAX_CELL). Columns named in ``shrink``
    may be cut down to the given width before any column is dropped; dropping starts from the
    right. The first column is always shown (cut to the terminal if it must be)."""
    shrink = dict(shrink or {})
    natural = [
        min(MAX_CELL, max([len(h)] + [len(row[i]) for row in cells])) for i, h in enumerate(headers)
    ]
    smallest = [
        min(natural[i], max(len(h), shrink[h])) if h in shrink else natural[i] for i, h in enumerate(headers)
    ]

    def total(columns: list[int], sizes: Sequence[int]) -> int:
        return sum(sizes[i] + _GAP for i in columns) + 1

    shown = list(range(len(headers)))
    while len(shown) > 1 and total(shown, smallest) > width:
        shown.pop()
    widths = {i: smallest[i] for i in shown}
    slack = width - total(shown, smallest)
    for i in shown:  # give room back to shrunk columns, left first
        extra = min(max(0, slack), natural[i] - widths[i])
        widths[i] += extra
        slack -= extra
    if total(shown, [widths.get(i, 0) for i in range(len(headers))]) > width:  # one column too wide
        widths[shown[0]] = max(1, width - _GAP - 1)
    return Layout(shown, widths, [headers[i] for i in range(len(headers)) if i not in shown])


def _clip(text: str, width: int) -> str:
    """``text`` cut to ``width`` with "…"; a model name or path keeps its last part
    ("HuggingFaceTB/SmolLM2-135M" -> "…/SmolLM2-135M"), the part that tells them apart."""
    if len(text) <= width:
        return text
    tail = text.rsplit("/", 1)[-1]
    if "/" in text and 6 <= len(tail) <= width - 2:
        return "…/" + tail
    return text[: max(0, width - 1)] + "…"


def rich_table(
    result: QueryResult,
    title: str | None = None,
    *,
    width: int | None = None,
    shrink: Mapping[str, int] | None = None,
) -> tuple[Any, list[str]]:
    """A rich Table of the columns that fit in ``width`` (the terminal's by default), and the names
    of the columns left out. Values are plain Text: a "[red]" in a run name is not markup."""
    from rich.table import Table
    from rich.text import Text

    width = width or terminal_width()
    headers = [visible(c) for c in result.columns]
    cells = [[cell(v) for v in row] for row in result.rows]
    layout = fit_columns(headers, cells, width, shrink)
    types = _types(result)
    table = Table(title=title, title_justify="left", header_style="bold", show_lines=False)
    for i in layout.shown:
        table.add_column(
            Text(headers[i]),
            justify="right" if _is_numeric(types[i]) else "left",
            no_wrap=True,
            overflow="ellipsis",
            min_width=layout.widths[i],
            max_width=layout.widths[i],
        )
    for row in cells:
        table.add_row(*[Text(_clip(row[i], layout.widths[i])) for i in layout.shown])
    return table, layout.hidden


def terminal_width() -> int:
    """The terminal's width (COLUMNS wins, as for every other tool); 80 when unknown."""
    return shutil.get_terminal_size((80, 24)).columns


def more_columns(hidden: Sequence[str], width: int) -> str:
    """The "… N more columns: a, b, …" line under a table that left columns out."""
    if not hidden:
        return ""
    head = f"… {len(hidden)} more column{'s' if len(hidden) != 1 else ''}: "
    tail = " (--columns a,b or --vertical)"
    room = max(10, width - len(head) - len(tail))
    names = ", ".join(hidden)
    if len(names) > room:  # whole names only, as many as fit
        names = names[: room - 3].rsplit(", ", 1)[0] + ", …"
    return head + names + tail


def print_table(
    result: QueryResult,
    title: str | None = None,
    *,
    shrink: Mapping[str, int] | None = None,
    footer: bool = True,
) -> None:
    """A table that fits the terminal, the columns it left out, and the row count."""
    from rich.console import Console

    width = terminal_width()
    console = Console(width=width, soft_wrap=False)
    table, hidden = rich_table(result, title, width=width, shrink=shrink)
    console.print(table)
    if hidden:
        console.print(more_columns(hidden, width), style="dim", markup=False, highlight=False)
    if footer:
        console.print(f"{len(result)} row{'s' if len(result) != 1 else ''}", style="dim", highlight=False)


def default_format() -> str:
    """``table`` for a terminal, ``tsv`` for a pipe or a file."""
    return "table" if sys.stdout.isatty() else "tsv"


def print_result(
    result: QueryResult,
    fmt: str | None = None,
    title: str | None = None,
    *,
    vertical: bool = False,
    columns: Sequence[str] | None = None,
    shrink: Mapping[str, int] | None = None,
) -> None:
    """Write ``result`` to stdout in ``fmt`` (one of FORMATS; None picks by where stdout goes)."""
    import click

    if columns:
        result = select_columns(result, columns)
    fmt = fmt or default_format()
    if vertical and fmt in ("table", "tsv"):
        click.echo(to_vertical(result), nl=False)
    elif fmt == "table":
        print_table(result, title, shrink=shrink)
    elif fmt == "tsv":
        click.echo(to_tsv(result), nl=False)
    elif fmt == "csv":
        click.echo(to_csv(result), nl=False)
    elif fmt == "json":
        click.echo(to_json(result))
    else:
        click.echo(to_markdown(result), nl=False)


def drop_empty_columns(result: QueryResult) -> QueryResult:
    """``result`` without the columns that are NULL or empty in every row (a table of blanks says
    nothing)."""
    keep = [c for i, c in enumerate(result.columns) if any(row[i] not in (None, "") for row in result.rows)]
    return select_columns(result, keep) if result.rows and len(keep) < len(result.columns) else result


def rounded_text(result: QueryResult, names: Sequence[str]) -> QueryResult:
    """``result`` with the numbers written as text in columns ``names`` rounded like numbers
    ("0.16731363445141573" -> "0.1673"); other text is left as it is."""
    index = {result.columns.index(n) for n in names if n in result.columns}

    def tidy(value: Any) -> Any:
        if not isinstance(value, str) or not any(ch in value for ch in ".eE"):
            return value
        try:
            return number(float(value))
        except ValueError:
            return value

    rows = [tuple(tidy(v) if i in index else v for i, v in enumerate(row)) for row in result.rows]
    return QueryResult(list(result.columns), rows, list(result.types))


# Words for people: the trained student is "distilled" in the report and the TUI; the SQL (and
# --format json) keep the registry's column and role names, which scripts rely on.
FOR_PEOPLE = {
    "student": "distilled",
    "student_score": "distilled_score",
    "student_vs_teacher_pct": "distilled_vs_teacher_pct",
    "bytes": "size",
}


def for_people(result: QueryResult) -> QueryResult:
    """``result`` as a table shows it: "student" columns and roles named "distilled", byte counts
    as sizes ("246.4 MB")."""
    from stillhouse.kernel.housekeeping import human_bytes

    columns = [FOR_PEOPLE.get(c, c) for c in result.columns]
    types = list(result.types)

    def shown(column: str, value: Any) -> Any:
        if column == "bytes" and isinstance(value, int | float):
            return human_bytes(value)
        if (column == "role" and value == "student") or (column == "metric" and value == "student_score"):
            return FOR_PEOPLE[value]
        return value

    rows = [tuple(shown(c, v) for c, v in zip(result.columns, row, strict=True)) for row in result.rows]
    if "bytes" in result.columns and types:
        types[result.columns.index("bytes")] = "VARCHAR"
    return QueryResult(columns, rows, types)
