"""Reading run folders: what changed since the last ingest, and the new events and files.

Nothing here touches the database; `ingest` turns a :class:`RunDelta` into rows. Reading happens
before the write lock is taken, so a slow parse never blocks readers.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stillhouse.kernel.events import read_complete_lines
from stillhouse.kernel.run_folder import RunFolder
from stillhouse.registry import fastpath
from stillhouse.registry.redact import Redactor


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
    data: bytes = b""  # the new complete lines of the events file, parsed by parse_batch
    events: list[dict[str, Any]] = field(default_factory=list)  # set by parse_batch: all but metric/progress
    newest_us: int | None = None  # set by parse_batch: newest metric/progress timestamp
    samples: list[dict[str, Any]] | None = None  # None: unchanged
    results: dict[str, Any] | None = None  # None: unchanged
    eval_outputs: dict[str, list[dict[str, Any]]] | None = None  # None: unchanged

    @property
    def size(self) -> int:
        """Rough number of rows this delta writes (for batching)."""
        samples = len(self.samples or [])
        outputs = sum(len(v) for v in (self.eval_outputs or {}).values())
        return self.data.count(b"\n") + samples + outputs


def _sig_of(st: os.stat_result) -> str:
    return f"{st.st_size}:{st.st_mtime_ns}"


def _sig(path: str | Path) -> str | None:
    try:
        return _sig_of(os.stat(path))
    except FileNotFoundError:
        return None


def folder_sigs(run_dir: Path | str) -> FolderSigs | None:
    """Signatures of a run folder's files; None when it has no events file. Called for every run
    before every query, so it sticks to a few plain stat calls (paths joined as strings)."""
    run_dir = str(run_dir)
    try:
        events_size = os.stat(os.path.join(run_dir, RunFolder.EVENTS)).st_size
    except FileNotFoundError:
        return None
    outputs = [f"{p.name}:{_sig(p)}" for p in RunFolder(run_dir).eval_output_files()]
    return FolderSigs(
        events_size=events_size,
        samples_sig=_sig(os.path.join(run_dir, RunFolder.SAMPLES)),
        results_sig=_sig(os.path.join(run_dir, RunFolder.RESULTS)),
        eval_outputs_sig="|".join(outputs) or None,
    )


def needs_ingest(state: IngestState | None, run_dir: str, sigs: FolderSigs) -> bool:
    if state is None or state.run_dir != run_dir:
        return True
    return (
        sigs.events_size != state.events_offset
        or sigs.samples_sig != state.samples_sig
        or sigs.results_sig != state.results_sig
        or sigs.eval_outputs_sig != state.eval_outputs_sig
    )


def _head_hash(first_line: bytes) -> str:
    return hashlib.sha256(first_line).hexdigest()[:16]


def _first_line(path: Path) -> bytes | None:
    try:
        with open(path, "rb") as fh:
            line = fh.readline()
    except FileNotFoundError:
        return None
    return line if line.endswith(b"\n") else None


def plan_run(run_dir: Path, state: IngestState | None, redactor: Redactor) -> RunDelta | None:
    """Read what is new in ``run_dir`` since ``state``; None when nothing is. The files written
    whole are parsed here; the new event lines are parsed for a whole batch by parse_batch."""
    run_dir = Path(run_dir)
    folder = RunFolder(run_dir)
    run_id = run_dir.name
    sigs = folder_sigs(run_dir) or FolderSigs(0, None, None, None)
    events_path = folder.events_path
    reset = state is None or state.run_dir != str(run_dir) or sigs.events_size < state.events_offset
    if not reset and state is not None and state.events_offset > 0:
        # Same size or larger, but is it the same file? A recreated folder gets a fresh ingest.
        first = _first_line(events_path)
        reset = first is None or _head_hash(first) != state.events_head
    base = None if reset else state
    offset = 0 if base is None else base.events_offset
    # A torn final line waits for the next ingest.
    data, new_offset = read_complete_lines(events_path, offset)
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
    return RunDelta(
        run_id=run_id,
        run_dir=run_dir,
        seen=state,
        state=new_state,
        reset=reset,
        data=data,
        samples=read_samples(folder.samples_path, redactor) if samples_changed else None,
        results=read_results(folder, redactor) if results_changed else None,
        eval_outputs=read_eval_outputs(folder, redactor) if outputs_changed else None,
    )


# -- events -------------------------------------------------------------------------------------


def parse_batch(deltas: list[RunDelta], redactor: Redactor) -> Any:
    """Parse the new event lines of many runs at once: sets each delta's ``events`` (all but metric
    and progress, redacted, in file order) and ``newest_us``, and returns the ``metrics`` rows of
    all their metric and progress events (an Arrow table, or None). One Arrow pass for the batch;
    if it cannot read the batch as a whole, each run is parsed on its own."""
    import numpy as np
    import pyarrow as pa

    for delta in deltas:
        delta.events, delta.newest_us = [], None
    todo = [d for d in deltas if d.data]
    if not todo:
        return None
    counts = [d.data.count(b"\n") for d in todo]
    owner = np.repeat(np.arange(len(todo)), counts)
    whole = fastpath.split(b"".join(d.data for d in todo), owner, [d.run_id for d in todo], redactor)
    if whole is not None:
        table, other, newest = whole
        events = decode_lines([line for _, line in other], redactor)
        for (index, _), event in zip(other, events, strict=True):
            if event is not None:
                todo[index].events.append(event)
        for index, ts in newest.items():
            todo[index].newest_us = ts
        return table
    tables = []
    for delta in todo:  # per run, then per line inside parse_run_events
        table = parse_run_events(delta, redactor)
        if table is not None:
            tables.append(table)
    return pa.concat_tables(tables) if tables else None


def parse_run_events(delta: RunDelta, redactor: Redactor) -> Any:
    """parse_batch for one run, falling back to classifying lines one by one."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    owner = np.zeros(delta.data.count(b"\n"), dtype=np.int64)
    whole = fastpath.split(delta.data, owner, [delta.run_id], redactor)
    if whole is not None:
        table, other, newest = whole
        delta.events = [e for e in decode_lines([line for _, line in other], redactor) if e is not None]
        delta.newest_us = newest.get(0)
        return table
    fast: dict[str, list[bytes]] = {kind: [] for kind in fastpath.FAST_TYPES}
    lines: list[bytes] = []
    for line in delta.data.split(b"\n"):
        if line.strip():
            kind = fastpath.kind_of(line)
            (fast[kind] if kind else lines).append(line)
    tables = []
    for kind, group in fast.items():
        part = fastpath.metric_rows(kind, group, delta.run_id, redactor) if group else None
        if part is not None:
            tables.append(part)
        else:
            lines.extend(group)  # metric/progress rows do not depend on their order among events
    delta.events = [e for e in decode_lines(lines, redactor) if e is not None]
    if not tables:
        return None
    table = pa.concat_tables(tables)
    delta.newest_us = pc.max(pc.cast(table["ts"], pa.int64())).as_py()
    return table


def decode_lines(lines: list[bytes], redactor: Redactor) -> list[dict[str, Any] | None]:
    """The JSON object of each raw line (None for a line that is not one), redacted where the
    secret screen flags it."""
    flagged = redactor.needs_many(lines)
    out: list[dict[str, Any] | None] = []
    for line, flag in zip(lines, flagged, strict=True):
        try:
            value = json.loads(line)
        except ValueError:
            value = None
        if not isinstance(value, dict):
            out.append(None)
        else:
            out.append(redactor.value(value) if flag else value)
    return out


def metric_row(run_id: str, event: dict[str, Any]) -> dict[str, Any]:
    """A ``metrics`` row from a metric event the fast path did not take."""
    return {
        "run_id": run_id,
        "key": to_text(event.get("key")),
        "context": to_text(event.get("context")),
        "step": to_int(event.get("step")),
        "value": to_float(event.get("value")),
        "ts": to_micros(event.get("ts")),
    }


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
    """Rows of a JSONL file written whole (the filtered samples, one role's eval outputs); [] when missing."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    return [row for row in decode_lines([line for line in data.split(b"\n") if line.strip()], redactor) if row]


def read_results(folder: RunFolder, redactor: Redactor) -> dict[str, Any]:
    """The evaluation results ({role: {model, info, metrics}}), redacted; {} when missing or half-written."""
    results: dict[str, Any] = redactor.value(folder.read_results())
    return results


def read_eval_outputs(folder: RunFolder, redactor: Redactor) -> dict[str, list[dict[str, Any]]]:
    """Each role's per-sample evaluation outputs."""
    return {p.stem: read_samples(p, redactor) for p in folder.eval_output_files()}


def list_run_dirs(root: Path) -> list[str]:
    """Candidate run folders under ``root`` (every sub-folder), sorted by name."""
    try:
        with os.scandir(root) as entries:
            return sorted(e.path for e in entries if e.is_dir())
    except FileNotFoundError:
        return []
