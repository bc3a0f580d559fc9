"""Arrow fast path for the two high-volume event types, metric and progress.

They are nearly every line of a big events file. A whole chunk of new lines is read by Arrow's C++
JSON reader in one pass (the union of the fields those two types use; other fields are ignored),
metric and progress rows become ``metrics`` rows column at a time, and only the remaining lines
(stage, teacher_call, eval ... events) are decoded one by one. Any surprise (NaN, which Python's
json writes; a float step; a third-party event with a clashing field type) makes the chunk fall
back to per-line classification, and a group that still does not fit to json.loads.
"""

from __future__ import annotations

import io
from typing import Any

from stillhouse.registry.redact import Redactor
from stillhouse.registry.schema import arrow_schema

# json.dumps writes '"type": "metric"'; compact writers '"type":"metric"'.
MARKERS = {
    "metric": (b'"type": "metric"', b'"type":"metric"'),
    "progress": (b'"type": "progress"', b'"type":"progress"'),
}
FAST_TYPES = tuple(MARKERS)


def _fields() -> dict[str, Any]:
    import pyarrow as pa

    return {
        "ts": pa.float64(),
        "type": pa.string(),
        "key": pa.string(),
        "context": pa.string(),
        "step": pa.int64(),
        "value": pa.float64(),
        "stage": pa.string(),
        "done": pa.float64(),
        "total": pa.float64(),
    }


_KIND_FIELDS = {
    "metric": ("ts", "type", "key", "context", "step", "value"),
    "progress": ("ts", "type", "stage", "done", "total"),
}


def kind_of(line: bytes) -> str | None:
    """The fast-path type a raw line looks like, or None."""
    for kind, markers in MARKERS.items():
        if markers[0] in line or markers[1] in line:
            return kind
    return None


def _read(data: bytes, names: tuple[str, ...]) -> Any:
    import pyarrow as pa
    import pyarrow.json as pj

    fields = _fields()
    schema = pa.schema([(n, fields[n]) for n in names])
    try:
        return pj.read_json(
            io.BytesIO(data),
            read_options=pj.ReadOptions(use_threads=False, block_size=max(1 << 20, len(data) + 1)),
            parse_options=pj.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore"),
        )
    except pa.ArrowInvalid:
        return None


def split(
    data: bytes, owner: Any, run_ids: list[str], redactor: Redactor
) -> tuple[Any, list[tuple[int, bytes]], dict[int, int]] | None:
    """One Arrow pass over complete lines of one or more runs (``owner[i]`` indexes ``run_ids``
    for line i). Returns the metrics rows of metric and progress events, the other lines as
    (owner, line) in order, and the newest fast-path timestamp (µs) per owner; None when Arrow
    cannot read the chunk as a whole."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    if not lines or len(lines) != len(owner) or b"\n\n" in data or data.startswith(b"\n"):
        return None  # row i must be line i
    raw = _read(data, tuple(_fields()))
    if raw is None or raw.num_rows != len(lines):
        return None
    names = pa.array(run_ids, pa.string())
    tables = []
    taken = np.zeros(raw.num_rows, dtype=bool)
    for kind in FAST_TYPES:
        mask = pc.fill_null(pc.equal(raw["type"], kind), False).to_numpy(zero_copy_only=False)
        if mask.any():
            run_id = pc.take(names, pa.array(owner[mask]))
            tables.append(_build(kind, raw.filter(pa.array(mask)), run_id, redactor))
            taken |= mask
    newest: dict[int, int] = {}
    if tables:
        ts = pc.fill_null(pc.cast(pc.multiply(raw["ts"], 1_000_000.0), pa.int64(), safe=False), 0)
        best = np.full(len(run_ids), np.iinfo(np.int64).min, dtype=np.int64)
        np.maximum.at(best, owner[taken], ts.to_numpy()[taken])
        newest = {i: int(v) for i, v in enumerate(best) if v != np.iinfo(np.int64).min}
    other = [(int(owner[i]), lines[i]) for i in np.flatnonzero(~taken)]
    return (pa.concat_tables(tables) if tables else None), other, newest


def metric_rows(kind: str, lines: list[bytes], run_id: str, redactor: Redactor) -> Any:
    """``metrics`` rows for lines of one fast type; None if they need Python."""
    import pyarrow.compute as pc

    raw = _read(b"\n".join(lines), _KIND_FIELDS[kind])
    if raw is None or raw.num_rows != len(lines) or not pc.all(pc.equal(raw["type"], kind)).as_py():
        return None
    import pyarrow as pa

    return _build(kind, raw, pa.array([run_id] * raw.num_rows, pa.string()), redactor)


def _screened(column: Any, redactor: Redactor) -> Any:
    """A text column with secrets redacted; screened at C++ speed, redacted in Python on a hit."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if not pc.any(pc.match_substring_regex(column, redactor.pattern())).as_py():
        return column
    return pa.array([None if v is None else redactor.text(v) for v in column.to_pylist()], pa.string())


def _build(kind: str, raw: Any, run_id: Any, redactor: Redactor) -> Any:
    """metrics rows from Arrow-read metric or progress events; ``run_id`` is a column."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if kind == "metric":
        key, context = _screened(raw["key"], redactor), _screened(raw["context"], redactor)
        step, value = raw["step"], raw["value"]
    else:  # progress: key progress/<stage>, step = done, value = done / total
        stage = _screened(pc.fill_null(raw["stage"], "None"), redactor)
        key = pc.binary_join_element_wise("progress/", stage, "")
        context = pa.array(["progress"] * raw.num_rows, pa.string())
        step = pc.cast(raw["done"], pa.int64(), safe=False)
        total = raw["total"]
        has_total = pc.fill_null(pc.not_equal(total, 0.0), False)
        value = pc.if_else(has_total, pc.divide(raw["done"], total), pa.scalar(None, pa.float64()))
    micros = pc.cast(pc.multiply(raw["ts"], 1_000_000.0), pa.int64(), safe=False)
    columns = [run_id, key, context, step, value, pc.cast(micros, pa.timestamp("us"))]
    return pa.Table.from_arrays([_plain(c) for c in columns], schema=arrow_schema("metrics"))


def _plain(column: Any) -> Any:
    """A ChunkedArray from a filtered table as one Array, so from_arrays sees equal types."""
    import pyarrow as pa

    return column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
