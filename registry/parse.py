"""Reading run folders: what changed since the last ingest, and the new events and files.

Nothing here touches the database; `ingest` turns a :class:`RunDelta` into rows. Reading happens
before the write lock is taken, so a slow parse never blocks readers.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stillhouse.kernel.runs import read_jsonl
from stillhouse.registry.redact import Redactor

EVENTS = "events.jsonl"
SAMPLES = "samples.jsonl"
RESULTS = "eval/results.json"

# Metric events are nearly all of a big events file; they are parsed by Arrow's C++ JSON reader
# (about 4x faster than json.loads) when every line fits this shape, and by Python otherwise.
_METRIC_MARKERS = (b'"type": "metric"', b'"type":"metric"')


@dataclass(frozen=True)
class IngestState:
    """How much of a run folder is in the database (a row of ``_ingest_state``)."""

    run_id: str
    run_dir: str
    events_offset: int = 0
    events_head: str | None = None
    samples_sig: str | None = None
    results_sig: str | None = None
    eval_outputs_sig: str | None = None


@dataclass(frozen=True)
class FolderSigs:
    """Cheap signatures (sizes, mtimes) of the files a run folder is ingested from."""

    events_size: int
    samples_sig: str | None
    results_sig: str | None
    eval_outputs_sig: str | None


@dataclass
class RunDelta:
    """What is new in one run folder since ``seen`` (None: never ingested). ``reset``: the folder
    is ingested from scratch, replacing every row of the run."""

    run_id: str
    run_dir: Path
    seen: IngestState | None  # the state this delta was planned from (checked again under the lock)
    state: IngestState
    reset: bool
    events: list[dict[str, Any]] = field(default_factory=list)
    metric_table: Any = None  # pyarrow.Table (run_id, key, context, step, value, ts) or None
    samples: list[dict[str, Any]] | None = None  # None: unchanged
    results: dict[str, Any] | None = None  # None: unchanged
    eval_outputs: dict[str, list[dict[str, Any]]] | None = None  # None: unchanged

    @property
    def size(self) -> int:
        """Rough number of rows this delta writes (for batching)."""
        metric_rows = self.metric_table.num_rows if self.metric_table is not None else 0
        samples = len(self.samples or [])
        outputs = sum(len(v) for v in (self.eval_outputs or {}).values())
        return len(self.events) + metric_rows + samples + outputs


def _sig(path: Path) -> str | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return f"{st.st_size}:{st.st_mtime_ns}"


def eval_output_files(run_dir: Path) -> list[Path]:
    eval_dir = run_dir / "eval"
    if not eval_dir.is_dir():
        return []
    return sorted(p for p in eval_dir.iterdir() if p.suffix == ".jsonl" and p.is_file())


def folder_sigs(run_dir: Path) -> FolderSigs:
    try:
        events_size = (run_dir / EVENTS).stat().st_size
    except FileNotFoundError:
        events_size = 0
    outputs = [f"{p.name}:{_sig(p)}" for p in eval_output_files(run_dir)]
    return FolderSigs(
        events_size=events_size,
        samples_sig=_sig(run_dir / SAMPLES),
        results_sig=_sig(run_dir / RESULTS),
        eval_outputs_sig="|".join(outputs) or None,
    )


def needs_ingest(state: IngestState | None, run_dir: Path, sigs: FolderSigs) -> bool:
    if state is None or state.run_dir != str(run_dir):
        return True
    return (
        sigs.events_size != state.events_offset
        or sigs.samples_sig != state.samples_sig
        or sigs.results_sig != state.results_sig
        or sigs.eval_outputs_sig != state.eval_outputs_sig
    )


def _head_hash(first_line: bytes) -> str:
    return hashlib.sha256(first_line).hexdigest()[:16]


def _read_complete_lines(path: Path, offset: int) -> tuple[bytes, int]:
    """Bytes from ``offset`` up to the last newline (a torn final line waits for the next ingest)."""
    try:
        with open(path, "rb") as fh:
            fh.seek(offset)
            data = fh.read()
    except FileNotFoundError:
        return b"", offset
    end = data.rfind(b"\n") + 1
    return data[:end], offset + end


def _first_line(path: Path) -> bytes | None:
    try:
        with open(path, "rb") as fh:
            line = fh.readline()
    except FileNotFoundError:
        return None
    return line if line.endswith(b"\n") else None


def plan_run(run_dir: Path, state: IngestState | None, redactor: Redactor) -> RunDelta | None:
    """Read what is new in ``run_dir`` since ``state``; None when nothing is."""
    run_dir = Path(run_dir)
    run_id = run_dir.name
    sigs = folder_sigs(run_dir)
    events_path = run_dir / EVENTS
    reset = state is None or state.run_dir != str(run_dir) or sigs.events_size < state.events_offset
    if not reset and state is not None and state.events_offset > 0:
        # Same size or larger, but is it the same file? A recreated folder gets a fresh ingest.
        first = _first_line(events_path)
        reset = first is None or _head_hash(first) != state.events_head
    base = None if reset else state
    offset = 0 if base is None else base.events_offset
    data, new_offset = _read_complete_lines(events_path, offset)
    head = base.events_head if base is not None else None
    if head is None and data:
        head = _head_hash(data[: data.find(b"\n") + 1])
    new_state = IngestState(
        run_id=run_id,
        run_dir=str(run_dir),
        events_offset=new_offset,
        events_head=head,
        samples_sig=sigs.samples_sig,
        results_sig=sigs.results_sig,
        eval_outputs_sig=sigs.eval_outputs_sig,
    )
    samples_changed = base is None or sigs.samples_sig != base.samples_sig
    results_changed = base is None or sigs.results_sig != base.results_sig
    outputs_changed = base is None or sigs.eval_outputs_sig != base.eval_outputs_sig
    if not (reset or data or samples_changed or results_changed or outputs_changed):
        return None
    events, metric_table = parse_events(data, run_id, redactor)
    return RunDelta(
        run_id=run_id,
        run_dir=run_dir,
        seen=state,
        state=new_state,
        reset=reset,
        events=events,
        metric_table=metric_table,
        samples=read_samples(run_dir / SAMPLES, redactor) if samples_changed else None,
        results=read_results(run_dir / RESULTS, redactor) if results_changed else None,
        eval_outputs=read_eval_outputs(run_dir, redactor) if outputs_changed else None,
    )


# -- events -------------------------------------------------------------------------------------


def parse_events(data: bytes, run_id: str, redactor: Redactor) -> tuple[list[dict[str, Any]], Any]:
    """Split new event lines into metric rows (an Arrow table, fast path) and other events (dicts,
    redacted). Malformed lines are skipped: only a torn line can be, and we cut those off."""
    if not data:
        return [], None
    metric_lines: list[bytes] = []
    other: list[dict[str, Any]] = []
    for line in data.split(b"\n"):
        if not line.strip():
            continue
        if _METRIC_MARKERS[0] in line or _METRIC_MARKERS[1] in line:
            metric_lines.append(line)
            continue
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict):
            other.append(redactor.value(event))
    table = _metric_table(metric_lines, run_id, redactor) if metric_lines else None
    return other, table


def _metric_schema() -> Any:
    import pyarrow as pa

    return pa.schema(
        [
            ("ts", pa.float64()),
            ("type", pa.string()),
            ("key", pa.string()),
            ("context", pa.string()),
            ("step", pa.int64()),
            ("value", pa.float64()),
        ]
    )


def _metric_table(lines: list[bytes], run_id: str, redactor: Redactor) -> Any:
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.json as pj

    try:
        raw = pj.read_json(
            io.BytesIO(b"\n".join(lines)),
            parse_options=pj.ParseOptions(explicit_schema=_metric_schema(), unexpected_field_behavior="ignore"),
        )
        if raw.num_rows != len(lines) or not pc.all(pc.equal(raw["type"], "metric")).as_py():
            raise ValueError("not all lines are metric events")
    except (pa.ArrowInvalid, ValueError):
        # NaN/Infinity, float steps, a line that only mentions "metric" ...: parse them one by one.
        return _metric_table_slow(lines, run_id, redactor)
    # Screen the two text columns for secrets at C++ speed; redact the rare hit in Python.
    columns = {}
    pattern = redactor.pattern()
    for name in ("key", "context"):
        col = raw[name]
        if pc.any(pc.match_substring_regex(col, pattern)).as_py():
            col = pa.array([None if v is None else redactor.text(v) for v in col.to_pylist()], pa.string())
        columns[name] = col
    ts_us = pc.cast(pc.multiply(raw["ts"], 1_000_000.0), pa.int64(), safe=False)
    return pa.table(
        {
            "run_id": pa.array([run_id] * raw.num_rows, pa.string()),
            "key": columns["key"],
            "context": columns["context"],
            "step": raw["step"],
            "value": raw["value"],
            "ts": pc.cast(ts_us, pa.timestamp("us")),
        }
    )


def _metric_table_slow(lines: list[bytes], run_id: str, redactor: Redactor) -> Any:
    rows = []
    for line in lines:
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict) and event.get("type") == "metric":
            rows.append(metric_row(run_id, redactor.value(event)))
    return rows_to_metric_table(rows)


def metric_row(run_id: str, event: dict[str, Any]) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "key": to_text(event.get("key")),
        "context": to_text(event.get("context")),
        "step": to_int(event.get("step")),
        "value": to_float(event.get("value")),
        "ts": to_micros(event.get("ts")),
    }


def rows_to_metric_table(rows: list[dict[str, Any]]) -> Any:
    import pyarrow as pa

    schema = pa.schema(
        [
            ("run_id", pa.string()),
            ("key", pa.string()),
            ("context", pa.string()),
            ("step", pa.int64()),
            ("value", pa.float64()),
            ("ts", pa.timestamp("us")),
        ]
    )
    return pa.Table.from_pylist(rows, schema=schema)


# -- value helpers --------------------------------------------------------------------------------


def to_micros(ts: Any) -> int | None:
    """Unix seconds -> microseconds (Arrow TIMESTAMP[us], UTC)."""
    try:
        return int(float(ts) * 1_000_000)
    except (TypeError, ValueError):
        return None


def to_float(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return float(value) if isinstance(value, bool) else None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def to_int(value: Any) -> int | None:
    if value is None:
        return None
    try:
        return int(float(value))
    except (TypeError, ValueError, OverflowError):
        return None


def to_text(value: Any) -> str | None:
    """Strings as they are; other values as JSON text."""
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, default=str)


# -- output files ---------------------------------------------------------------------------------


def read_samples(path: Path, redactor: Redactor) -> list[dict[str, Any]]:
    return [redactor.value(row) for row in read_jsonl(path) if isinstance(row, dict)]


def read_results(path: Path, redactor: Redactor) -> dict[str, Any]:
    """eval/results.json ({role: {model, info, metrics}}); {} when missing or half-written."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return {}
    return redactor.value(data) if isinstance(data, dict) else {}


def read_eval_outputs(run_dir: Path, redactor: Redactor) -> dict[str, list[dict[str, Any]]]:
    """eval/<role>.jsonl files by role."""
    return {p.stem: read_samples(p, redactor) for p in eval_output_files(run_dir)}


def list_run_dirs(root: Path) -> list[Path]:
    """Run folders under ``root`` (those with an events file), sorted by name."""
    if not root.is_dir():
        return []
    with os.scandir(root) as entries:
        dirs = [Path(e.path) for e in entries if e.is_dir() and os.path.exists(os.path.join(e.path, EVENTS))]
    return sorted(dirs)
