"""Reading task data: JSONL, CSV and Parquet rows with their line numbers, mapped to Examples.

Errors name the file, the line and the field. With ``on_bad_rows = "skip"`` bad rows are counted
and their first problems kept for the report instead.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stillhouse.kernel.errors import DataError, Location
from stillhouse.kernel.interfaces import Example

if TYPE_CHECKING:
    from stillhouse.kernel.interfaces import TaskType

SUPPORTED = (".jsonl", ".json", ".csv", ".parquet")


def iter_rows(
    path: Path, limit: int | None = None, on_bad: Callable[[DataError], None] | None = None
) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield (line number, row) pairs. For Parquet, the "line" is the 1-based row number.

    A line that is not a JSON object raises DataError, or goes to ``on_bad`` when given."""
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED:
        raise DataError(
            f"unsupported data file type '{suffix}'",
            where=Location(str(path)),
            hint="use JSONL (one JSON object a line), CSV with a header row, or Parquet",
        )
    count = 0
    if suffix in (".jsonl", ".json"):
        with open(path, encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                problem = None
                try:
                    row = json.loads(line)
                    if not isinstance(row, dict):
                        problem = DataError("each line must be a JSON object", where=Location(str(path), lineno))
                except json.JSONDecodeError as exc:
                    problem = DataError(f"invalid JSON: {exc.msg} (column {exc.colno})", where=Location(str(path), lineno))
                if problem is not None:
                    if on_bad is None:
                        raise problem
                    on_bad(problem)
                    continue
                yield lineno, row
                count += 1
                if limit and count >= limit:
                    return
    elif suffix == ".csv":
        with open(path, encoding="utf-8", newline="") as fh:
            reader = csv.DictReader(fh)
            for row in reader:
                yield reader.line_num, dict(row)
                count += 1
                if limit and count >= limit:
                    return
    else:
        import duckdb

        con = duckdb.connect()
        try:
            query = "SELECT * FROM read_parquet(?)" + (f" LIMIT {int(limit)}" if limit else "")
            rel = con.execute(query, [str(path)])
            columns = [d[0] for d in rel.description]
            for i, values in enumerate(rel.fetchall(), 1):
                yield i, dict(zip(columns, values, strict=True))
        finally:
            con.close()


def _lookup(row: dict[str, Any], name: str) -> tuple[bool, Any]:
    """Find a possibly dotted column (``answers.text``) in a row."""
    if name in row:
        return True, row[name]
    node: Any = row
    for part in name.split("."):
        if isinstance(node, dict) and part in node:
            node = node[part]
        else:
            return False, None
    return True, node


_KINDS = {"str": (str,), "list": (list, tuple), "any": (object,), "number": (int, float, str)}


def map_row(task: TaskType, row: dict[str, Any], *, split: str, index: int, source: str, mapping: dict[str, str]) -> Example:
    """Map a raw row to an Example using the task's FieldSpecs, their aliases and ``mapping``."""
    file, _, line = source.rpartition(":")
    inputs: dict[str, Any] = {}
    reference = None
    for spec in task.fields:
        candidates = [mapping[spec.name]] if spec.name in mapping else [spec.name, *spec.aliases]
        found, value = False, None
        for column in candidates:
            found, value = _lookup(row, column)
            if found:
                break
        # A blank cell (CSV has no null) is a missing value: an error when required, absent otherwise.
        if not found or value is None or (isinstance(value, str) and not value.strip()):
            if spec.required:
                tried = ", ".join(f"'{c}'" for c in candidates)
                raise DataError(
                    f"missing field '{spec.name}' (looked for column {tried})",
                    where=Location(file, int(line) if line.isdigit() else None, spec.name),
                    hint=f"map it in the config: [data] fields = {{ {spec.name} = \"your_column\" }}",
                )
            continue
        if not isinstance(value, _KINDS[spec.kind]):
            raise DataError(
                f"field '{spec.name}' should be {spec.kind}, got {type(value).__name__}",
                where=Location(file, int(line) if line.isdigit() else None, spec.name),
            )
        if spec.reference:
            reference = value
        else:
            inputs[spec.name] = value
    sample_id = str(row.get("id") or row.get("_id") or f"{split}-{index}")
    return Example(id=sample_id, split=split, inputs=inputs, reference=reference, source=source)


@dataclass
class LoadedSplit:
    split: str
    examples: list[Example]
    skipped: int = 0
    problems: list[str] = field(default_factory=list)


def load_split(
    task: TaskType,
    path: Path,
    split: str,
    *,
    limit: int | None = None,
    mapping: dict[str, str] | None = None,
    on_bad_rows: str = "error",
) -> LoadedSplit:
    """Read a whole split into Examples. Duplicate ids get a suffix so ids stay unique."""
    examples: list[Example] = []
    problems: list[str] = []
    skipped = 0
    seen: set[str] = set()

    def bad(exc: DataError) -> None:
        nonlocal skipped
        if on_bad_rows != "skip":
            raise exc
        skipped += 1
        if len(problems) < 20:
            problems.append(f"{exc.where}: {exc.what}")

    for index, (lineno, row) in enumerate(iter_rows(path, limit, bad)):
        try:
            example = task.example_from_row(row, split=split, index=index, source=f"{path}:{lineno}", mapping=mapping)
        except DataError as exc:
            bad(exc)
            continue
        if example.id in seen:
            example.id = f"{example.id}#{split}-{index}"
        seen.add(example.id)
        examples.append(example)
    return LoadedSplit(split, examples, skipped, problems)
