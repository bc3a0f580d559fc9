"""Reading task data: JSONL, CSV and Parquet rows with their line numbers, mapped to Examples.

Errors name the file, the line and the field. With ``on_bad_rows = "skip"`` bad rows are counted
and their first problems kept for the report instead.
"""

from __future__ import annotations

import csv
import difflib
import json
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stillhouse.kernel.data_hf import dataset_rows, is_dataset_source
from stillhouse.kernel.errors import ConfigError, DataError, Location
from stillhouse.kernel.interfaces import Example, FieldSpec

if TYPE_CHECKING:
    from stillhouse.kernel.interfaces import TaskType

SUPPORTED = (".jsonl", ".json", ".csv", ".parquet")


CSV_FIELD_LIMIT = 64 * 1024 * 1024
"""Largest CSV cell read (Python's default, 128 KiB, is smaller than one long document)."""


def iter_rows(
    path: Path, limit: int | None = None, on_bad: Callable[[DataError], None] | None = None
) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield (line number, row) pairs. For Parquet, the "line" is the 1-based row number.

    A line that is not a JSON object raises DataError, or goes to ``on_bad`` when given. Problems
    with the file as a whole (a folder, not UTF-8, binary, corrupt) always raise DataError."""
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED:
        raise DataError(
            f"unsupported data file type '{suffix}'",
            where=Location(str(path)),
            hint="use JSONL (one JSON object a line), CSV with a header row, or Parquet",
        )
    if path.is_dir():
        raise DataError("the data path is a folder, not a file", where=Location(str(path)), hint="name a file inside it")
    if suffix == ".csv":
        rows = _csv_rows(path)
    elif suffix == ".parquet":
        rows = _parquet_rows(path, limit)
    elif suffix == ".json" and _starts_with(path, b"["):
        rows = _json_array_rows(path, on_bad)
    else:
        rows = _jsonl_rows(path, on_bad)
    count = 0
    for lineno, row in rows:
        yield lineno, row
        count += 1
        if limit and count >= limit:
            return


def _decoded_lines(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, text) of a UTF-8 file, read line by line so a bad byte is reported at its
    line. A byte-order mark (Excel and Notepad write one) is dropped; a NUL byte means binary data."""
    with open(path, "rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            if lineno == 1 and raw.startswith((b"\xff\xfe", b"\xfe\xff")):
                raise DataError(
                    "UTF-16 text (Windows \"Unicode\"), not UTF-8",
                    where=Location(str(path), 1),
                    hint="save the file as UTF-8, e.g. iconv -f utf-16 -t utf-8 FILE",
                )
            # A NUL in a line, or anywhere near the start (a PNG's first "line" has none): binary.
            if b"\x00" in raw or (lineno == 1 and b"\x00" in fh.peek(4096)[:4096]):
                raise DataError(
                    "binary data (a NUL byte), not a text file",
                    where=Location(str(path), lineno),
                    hint="data files are JSONL, CSV (UTF-8 text) or Parquet; is the file name's suffix right?",
                )
            try:
                yield lineno, raw.decode("utf-8-sig" if lineno == 1 else "utf-8")
            except UnicodeDecodeError as exc:
                raise DataError(
                    f"not UTF-8 text: byte 0x{raw[exc.start]:02x} at column {exc.start + 1}",
                    where=Location(str(path), lineno),
                    hint="save the file as UTF-8, e.g. iconv -f latin1 -t utf-8 FILE",
                ) from None


def _starts_with(path: Path, prefix: bytes) -> bool:
    with open(path, "rb") as fh:
        head = fh.read(4096).removeprefix(b"\xef\xbb\xbf")
    return head.lstrip().startswith(prefix)


def _jsonl_rows(path: Path, on_bad: Callable[[DataError], None] | None) -> Iterator[tuple[int, dict[str, Any]]]:
    for lineno, line in _decoded_lines(path):
        if not line.strip():
            continue
        problem = None
        try:
            row = json.loads(line)
            if not isinstance(row, dict):
                problem = DataError("each line must be a JSON object", where=Location(str(path), lineno))
        except json.JSONDecodeError as exc:
            problem = DataError(f"invalid JSON: {exc.msg} (column {exc.colno})", where=Location(str(path), lineno))
            if lineno == 1 and path.suffix.lower() == ".json" and line.strip() == "{":
                problem.hint = "a .json data file holds a JSON array of row objects, or one object a line (JSONL)"
        if problem is not None:
            if on_bad is None:
                raise problem
            on_bad(problem)
            continue
        yield lineno, row


def _json_array_rows(path: Path, on_bad: Callable[[DataError], None] | None) -> Iterator[tuple[int, dict[str, Any]]]:
    """Rows of a ``.json`` file holding one array of objects, each with the line it starts on."""
    text = "".join(line for _, line in _decoded_lines(path))
    decoder = json.JSONDecoder()
    pos, line, counted = text.index("[") + 1, 1, 0

    def skip(at: int) -> int:
        while at < len(text) and text[at] in " \t\r\n":
            at += 1
        return at

    try:
        pos = skip(pos)
        if text.startswith("]", pos):
            return
        while True:
            line += text.count("\n", counted, pos)
            counted = pos
            row, pos = decoder.raw_decode(text, pos)
            if isinstance(row, dict):
                yield line, row
            else:
                problem = DataError("each item of the array must be a JSON object", where=Location(str(path), line))
                if on_bad is None:
                    raise problem
                on_bad(problem)
            pos = skip(pos)
            if text.startswith("]", pos):
                return
            if not text.startswith(",", pos):
                raise json.JSONDecodeError("Expecting ',' delimiter", text, pos)
            pos = skip(pos + 1)
    except json.JSONDecodeError as exc:
        raise DataError(
            f"invalid JSON: {exc.msg} (column {exc.colno})",
            where=Location(str(path), exc.lineno),
            hint="a .json data file holds a JSON array of row objects, or one object a line (JSONL)",
        ) from None


def _csv_rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    lines = (text for _, text in _decoded_lines(path))
    previous = csv.field_size_limit(max(CSV_FIELD_LIMIT, csv.field_size_limit()))
    try:
        reader = csv.DictReader(lines)
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                raise DataError(
                    f"not valid CSV: {exc}",
                    where=Location(str(path), reader.line_num + 1),  # the line being parsed is not counted yet
                    hint="a CSV file needs a header row; quote fields that hold commas, quotes or new lines",
                ) from None
            yield reader.line_num, dict(row)
    finally:
        csv.field_size_limit(previous)


def _parquet_rows(path: Path, limit: int | None) -> Iterator[tuple[int, dict[str, Any]]]:
    import duckdb

    con = duckdb.connect()
    try:
        query = "SELECT * FROM read_parquet(?)" + (f" LIMIT {int(limit)}" if limit else "")
        try:
            rel = con.execute(query, [str(path)])
            columns = [d[0] for d in rel.description]
            values = rel.fetchall()
        except duckdb.Error as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise DataError(
                f"cannot read the Parquet file: {first}",
                where=Location(str(path)),
                hint="the file is damaged or not Parquet; write it again (e.g. pandas.DataFrame.to_parquet)",
            ) from None
        for i, row in enumerate(values, 1):
            yield i, dict(zip(columns, row, strict=True))
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


def map_row(task: TaskType[Any], row: dict[str, Any], *, split: str, index: int, source: str, mapping: dict[str, str]) -> Example:
    """Map a raw row to an Example using the task's FieldSpecs, their aliases and ``mapping``."""
    file, _, line = source.rpartition(":")
    inputs: dict[str, Any] = {}
    reference = None
    for spec in task.fields:
        candidates = [mapping[spec.name]] if spec.name in mapping else [spec.name, *spec.aliases]
        if spec.reference and spec.name not in mapping:
            candidates.append(REFERENCES_COLUMN)
        found, value = False, None
        for column in candidates:
            found, value = _lookup(row, column)
            if found:
                break
        if spec.reference and (not found or value is None):
            numbered = _numbered_columns(row, candidates)
            if numbered:
                found, value = True, numbered
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
        several = spec.reference and isinstance(value, list) and all(isinstance(v, str) for v in value)
        if not several and not isinstance(value, _KINDS[spec.kind]):
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


REFERENCES_COLUMN = "references"
"""A generic column of several reference answers, tried for every task's reference field."""


def _numbered_columns(row: dict[str, Any], names: list[str]) -> list[str] | None:
    """Several references in numbered columns (``summary1``, ``summary2``, ``summary3`` in the
    DialogSum test file; ``answer_1`` ...), in their numeric order; blank cells dropped."""
    for name in names:
        pattern = re.compile(re.escape(name) + r"_?(\d+)")
        numbered = sorted((int(m.group(1)), key) for key in row if (m := pattern.fullmatch(str(key))))
        values = [row[key] for _, key in numbered if isinstance(row[key], str) and row[key].strip()]
        if values:
            return values
    return None


def reference_columns(task: TaskType, mapping: dict[str, str]) -> list[str]:
    """The columns a task's reference fields are looked for in, for error messages."""
    names: list[str] = []
    for spec in task.fields:
        if spec.reference:
            base = [mapping[spec.name]] if spec.name in mapping else [spec.name, *spec.aliases, REFERENCES_COLUMN]
            names += base + [f"{base[0]}1..N"]
    return names


def check_field_mapping(fields: Sequence[FieldSpec], mapping: dict[str, str], where: Callable[[str], Location]) -> None:
    """Refuse a ``data.fields`` key that is not one of the task's fields: it would be ignored."""
    names = [spec.name for spec in fields]
    if not names:  # a task that maps rows itself declares no fields
        return
    for key in mapping:
        if key not in names:
            close = difflib.get_close_matches(key, names, n=1)
            raise ConfigError(
                f"data.fields maps '{key}', which is not a field of this task",
                where=where(key),
                hint=(f"did you mean '{close[0]}'? " if close else "")
                + f"the task's fields are {', '.join(names)}; each maps to a column of your files",
            )


@dataclass
class LoadedSplit:
    split: str
    examples: list[Example]
    skipped: int = 0
    problems: list[str] = field(default_factory=list)
    columns: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Per example id, the values of ``keep_columns`` (columns that are no task field, e.g. the
    field named by ``data.balance_by``)."""


def load_split(
    task: TaskType,
    path: Path,
    split: str,
    *,
    limit: int | None = None,
    mapping: dict[str, str] | None = None,
    on_bad_rows: str = "error",
    for_evaluation: bool = False,
    keep_columns: Sequence[str] = (),
) -> LoadedSplit:
    """Read a whole split into Examples. Duplicate ids get a suffix so ids stay unique.

    An empty file is an error here, where the file is known, not stages later; so is a split
    ``for_evaluation`` with no reference answer at all (it would be scored by nothing)."""
    examples: list[Example] = []
    problems: list[str] = []
    skipped = 0
    seen: set[str] = set()
    columns: dict[str, dict[str, Any]] = {}

    def bad(exc: DataError) -> None:
        nonlocal skipped
        if on_bad_rows != "skip":
            raise exc
        skipped += 1
        if len(problems) < 20:
            problems.append(f"{exc.where}: {exc.what}")

    rows = dataset_rows(path, split, limit) if is_dataset_source(path) else iter_rows(path, limit, bad)
    for index, (lineno, row) in enumerate(rows):
        try:
            example = task.example_from_row(row, split=split, index=index, source=f"{path}:{lineno}", mapping=mapping)
        except DataError as exc:
            bad(exc)
            continue
        if example.id in seen:
            example.id = f"{example.id}#{split}-{index}"
        seen.add(example.id)
        examples.append(example)
        if keep_columns:
            columns[example.id] = {name: value for name in keep_columns if (value := _lookup(row, name)[1]) is not None}
    if not examples and not skipped:
        raise DataError(
            f"the {split} file has no rows", where=Location(str(path)), hint="write one JSON object a line, or a CSV header and rows"
        )
    wanted = reference_columns(task, mapping or {})
    if for_evaluation and examples and wanted and all(e.reference is None for e in examples):
        raise DataError(
            f"the {split} split is used for evaluation but no row has a reference answer",
            where=Location(str(path)),
            details=[f"looked for columns: {', '.join(wanted)}"],
            hint="map the column in the config: [data] fields = { "
            + f"{next(s.name for s in task.fields if s.reference)} = \"your_column\" }}",
        )
    return LoadedSplit(split, examples, skipped, problems, columns)
