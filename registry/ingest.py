"""Ingest: run folders -> registry rows. Idempotent, incremental, safe next to readers.

- Idempotent and incremental: ``_ingest_state`` remembers, per run, the byte offset of the
  events file read so far (always at a line end) and size/mtime signatures of the filtered
  samples, the evaluation results and each role's evaluation outputs (``kernel.run_folder``).
  Only new event lines are parsed; those files are re-read whole when their signature changes,
  and their rows replaced.
  Rows and the new offset commit in the same transaction, so a crash never double-counts.
- Short writes: folders are read and parsed *before* the write lock is taken; the write is one
  transaction of Arrow inserts. The state is re-checked under the lock; if another process
  ingested the run meanwhile, that run is re-planned from the newer state.
- Secrets are redacted while parsing (``redact.Redactor``), so they never reach the database.
- Folders are the truth: a run whose folder disappeared loses its rows at the next ``ingest_all``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

from stillhouse.kernel.runs import runs_root, stillhouse_home
from stillhouse.registry import rows as R
from stillhouse.registry.db import db_path, read_connection, write_connection
from stillhouse.registry.parse import (
    IngestState,
    RunDelta,
    folder_sigs,
    list_run_dirs,
    metric_row,
    needs_ingest,
    parse_batch,
    plan_run,
)
from stillhouse.registry.redact import Redactor
from stillhouse.registry.schema import arrow_schema, public_tables

log = logging.getLogger(__name__)

# Flush a write transaction after this many rows, so one writer never holds the file for long.
BATCH_ROWS = 250_000
_BATCH_VIEW = "_stillhouse_batch"
_EPOCH = datetime(1970, 1, 1)


def home_of(run_dir: Path) -> Path:
    """The Stillhouse home a run folder belongs to (``<home>/runs/<run_id>``)."""
    run_dir = Path(run_dir).resolve()
    return run_dir.parent.parent if run_dir.parent.name == "runs" else stillhouse_home()


def ingest_run(run_dir: Path, home: Path | None = None, *, timeout: float | None = None) -> int:
    """Ingest what is new in one run folder; returns the number of rows written."""
    run_dir = Path(run_dir).resolve()
    home = home or home_of(run_dir)
    known = _read_states(home, timeout)
    return write_pending(home, [(run_dir, known.get(run_dir.name))], [], timeout)


def ingest_all(home: Path | None = None, *, timeout: float | None = None) -> int:
    """Ingest every run folder under ``$STILLHOUSE_HOME/runs`` that changed since the last ingest,
    and drop the rows of runs whose folder is gone. Returns the number of rows written.

    Cheap when nothing changed: a stat of each folder's files and one read-only query."""
    home = home or stillhouse_home()
    todo, gone = pending(home, _read_states(home, timeout))
    return write_pending(home, todo, gone, timeout)


Pending = list[tuple[Path, IngestState | None]]


def pending(home: Path, states: dict[str, IngestState]) -> tuple[Pending, list[str]]:
    """Run folders whose files changed since ``states`` (with their state), and ids of ingested
    runs whose folder is gone. Reads only file sizes and mtimes."""
    states = dict(states)
    todo = []
    for run_dir in list_run_dirs(runs_root(home).resolve()):
        sigs = folder_sigs(run_dir)
        if sigs is None:
            continue  # not a run folder (yet): no events file
        state = states.pop(os.path.basename(run_dir), None)
        if needs_ingest(state, run_dir, sigs):
            todo.append((Path(run_dir), state))
    gone = [s.run_id for s in states.values() if not Path(s.run_dir).exists()]
    return todo, gone


def delete_runs(run_ids: list[str], home: Path | None = None, *, timeout: float | None = None) -> None:
    """Remove every row of these runs (and their ingest state)."""
    with write_connection(home, timeout=timeout) as con:
        _delete(con, (*public_tables(), "_ingest_state"), run_ids)


# -- planning ------------------------------------------------------------------------------------


def _read_states(home: Path, timeout: float | None) -> dict[str, IngestState]:
    if not db_path(home).exists():
        return {}
    with read_connection(home, timeout=timeout) as con:
        return states(con)


def states(con: Any, run_ids: list[str] | None = None) -> dict[str, IngestState]:
    """The ingest state of every run (or of ``run_ids``), on any open connection."""
    sql = (
        "SELECT run_id, run_dir, events_offset, events_head, samples_sig, results_sig, eval_outputs_sig "
        "FROM _ingest_state"
    )
    rows = (
        con.execute(sql + " WHERE run_id IN (SELECT unnest(?::VARCHAR[]))", [run_ids]).fetchall()
        if run_ids is not None
        else con.execute(sql).fetchall()
    )
    return {row[0]: IngestState(*row) for row in rows}


def write_pending(home: Path, todo: Pending, gone: list[str], timeout: float | None = None) -> int:
    """Plan each folder (outside any lock), then write in transactions of about BATCH_ROWS rows."""
    redactor = Redactor()
    written = 0
    batch: list[RunDelta] = []
    size = 0
    for run_dir, state in todo:
        delta = plan_run(run_dir, state, redactor)
        if delta is None:
            continue
        batch.append(delta)
        size += delta.size
        if size >= BATCH_ROWS:
            written += _write(home, batch, [], redactor, timeout)
            batch, size = [], 0
    if batch or gone:
        written += _write(home, batch, gone, redactor, timeout)
    return written


# -- writing -------------------------------------------------------------------------------------


def _write(home: Path, deltas: list[RunDelta], gone: list[str], redactor: Redactor, timeout: float | None) -> int:
    metrics = parse_batch(deltas, redactor)  # before the lock: parsing is most of the work
    with write_connection(home, timeout=timeout) as con:
        if gone:
            _delete(con, (*public_tables(), "_ingest_state"), gone)
            log.info("registry: dropped %d runs whose folders are gone", len(gone))
        deltas, metrics = _recheck(con, deltas, metrics, redactor)
        return _apply(con, deltas, metrics)


def _recheck(con: Any, deltas: list[RunDelta], metrics: Any, redactor: Redactor) -> tuple[list[RunDelta], Any]:
    """Under the write lock: re-plan runs another process ingested since we planned them, and
    swap their metrics rows for the re-planned ones."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if not deltas:
        return [], None
    current = states(con, [d.run_id for d in deltas])
    fresh, replanned, stale = [], [], []
    for delta in deltas:
        now = current.get(delta.run_id)
        if now == delta.seen:
            fresh.append(delta)
            continue
        stale.append(delta.run_id)
        again = plan_run(delta.run_dir, now, redactor)
        if again is not None:
            replanned.append(again)
    if not stale:
        return deltas, metrics
    if metrics is not None:
        metrics = metrics.filter(pc.invert(pc.is_in(metrics["run_id"], value_set=pa.array(stale, pa.string()))))
    tables = [t for t in (metrics, parse_batch(replanned, redactor)) if t is not None]
    return fresh + replanned, (pa.concat_tables(tables) if tables else None)


def _apply(con: Any, deltas: list[RunDelta], metrics: Any) -> int:
    if not deltas:
        return 0
    ids = [d.run_id for d in deltas]
    _delete(con, public_tables(), [d.run_id for d in deltas if d.reset])
    runs = {r["run_id"]: r for r in _fetch(con, "runs", ids)}
    stages: dict[str, dict[str, dict[str, Any]]] = {}  # run_id -> stage -> row
    for row in _fetch(con, "stages", ids):
        stages.setdefault(row["run_id"], {})[row["stage"]] = row

    out: dict[str, list[dict[str, Any]]] = {
        name: [] for name in ("metrics", "teacher_calls", "logs", "artifacts", "sweep_results")
    }
    event_evals: list[dict[str, Any]] = []
    config_runs: dict[str, dict[str, Any]] = {}  # run_id -> latest run_started event
    for delta in deltas:
        rid = delta.run_id
        run = runs.get(rid) or R.empty_run(rid, str(delta.run_dir))
        run["run_dir"] = str(delta.run_dir)
        R.fold_rows(run, stages.setdefault(rid, {}), delta.events)
        for event in delta.events:
            kind = event.get("type")
            if kind == "run_started":
                config_runs[rid] = event
            elif kind == "stage_failed":
                out["logs"].append(R.log_row(rid, event))
            elif kind == "progress":  # likewise
                out["metrics"].append(R.progress_row(rid, event))
            elif kind == "metric":  # only lines the Arrow fast path gave back
                out["metrics"].append(metric_row(rid, event))
            elif kind == "teacher_call":
                out["teacher_calls"].append(R.teacher_call_row(rid, event))
            elif kind == "eval":
                event_evals.append(R.eval_row(rid, event.get("role"), event))
            elif kind == "artifact":
                out["artifacts"].append(R.artifact_row(rid, event))
            elif kind == "log":
                out["logs"].append(R.log_row(rid, event))
            elif kind == "sweep_trial":
                out["sweep_results"].append(R.sweep_result_row(rid, event))
            # other event types (third-party plugins) are left to the events file
        if delta.newest_us is not None and (run.get("updated_at") is None or delta.newest_us > run["updated_at"]):
            run["updated_at"] = delta.newest_us
        runs[rid] = run

    written = 0
    _delete(con, ("runs", "stages"), ids)
    written += _insert(con, "runs", [runs[i] for i in ids])
    written += _insert(con, "stages", [row for rid in ids for row in stages.get(rid, {}).values()])
    _delete(con, ("params", "plugins_used"), list(config_runs))
    written += _insert(con, "params", [p for rid, ev in config_runs.items() for p in _params(rid, ev)])
    written += _insert(con, "plugins_used", [p for rid, ev in config_runs.items() for p in R.plugins_from(rid, ev)])
    if metrics is not None:
        written += _insert_arrow(con, "metrics", metrics)
    written += _insert(con, "metrics", out["metrics"])
    written += _insert(con, "teacher_calls", out["teacher_calls"])
    written += _insert(con, "logs", out["logs"])
    written += _upsert(con, "artifacts", R.last_by(out["artifacts"], "run_id", "name"), ("run_id", "name"))
    written += _upsert(con, "sweep_results", R.last_by(out["sweep_results"], "run_id"), ("run_id",))
    written += _upsert(con, "evals", R.last_by(event_evals, "run_id", "role", "metric"), ("run_id", "role", "metric"))
    written += _write_results(con, [d for d in deltas if d.results is not None])
    written += _replace_files(con, deltas)
    _delete(con, ("_ingest_state",), ids)
    _insert(con, "_ingest_state", [{**vars(d.state), "ingested_at": _now_us()} for d in deltas])
    return written


def _params(run_id: str, event: dict[str, Any]) -> list[dict[str, Any]]:
    config = event.get("config")
    return R.flatten_params(run_id, config) if isinstance(config, dict) else []


def _write_results(con: Any, deltas: list[RunDelta]) -> int:
    """The evaluation results are the complete record of the roles they list: replace those roles."""
    import pyarrow as pa

    rows = [
        row for d in deltas for row in R.last_by(R.result_rows(d.run_id, d.results or {}), "run_id", "role", "metric")
    ]
    if not rows:
        return 0
    roles = sorted({(row["run_id"], row["role"]) for row in rows})
    con.register(_BATCH_VIEW, pa.table({"run_id": [r[0] for r in roles], "role": [r[1] for r in roles]}))
    try:
        con.execute(f"DELETE FROM evals USING {_BATCH_VIEW} b WHERE evals.run_id = b.run_id AND evals.role = b.role")
    finally:
        con.unregister(_BATCH_VIEW)
    return _insert(con, "evals", rows)


def _replace_files(con: Any, deltas: list[RunDelta]) -> int:
    """The samples and evaluation output files are written whole: replace a run's rows when they change."""
    with_samples = [d for d in deltas if d.samples is not None]
    _delete(con, ("samples",), [d.run_id for d in with_samples])
    written = _insert(con, "samples", [R.sample_row(d.run_id, s) for d in with_samples for s in d.samples or []])
    with_outputs = [d for d in deltas if d.eval_outputs is not None]
    _delete(con, ("eval_samples",), [d.run_id for d in with_outputs])
    rows = [
        R.eval_sample_row(d.run_id, role, row)
        for d in with_outputs
        for role, lines in (d.eval_outputs or {}).items()
        for row in lines
    ]
    return written + _insert(con, "eval_samples", rows)


# -- table helpers -------------------------------------------------------------------------------


def _delete(con: Any, tables: Iterable[str], run_ids: list[str]) -> None:
    if not run_ids:
        return
    for table in tables:
        con.execute(f"DELETE FROM {table} WHERE run_id IN (SELECT unnest(?::VARCHAR[]))", [run_ids])


def _fetch(con: Any, table: str, run_ids: list[str]) -> list[dict[str, Any]]:
    """Existing rows, timestamps as microseconds (the unit rows are built in)."""
    cursor = con.execute(f"SELECT * FROM {table} WHERE run_id IN (SELECT unnest(?::VARCHAR[]))", [run_ids])
    names = [d[0] for d in cursor.description]
    return [{n: _micros(v) for n, v in zip(names, row, strict=True)} for row in cursor.fetchall()]


def _micros(value: Any) -> Any:
    if isinstance(value, datetime):
        return (value - _EPOCH) // _US
    return value


_US = datetime(1970, 1, 1, 0, 0, 0, 1) - _EPOCH


def _now_us() -> int:
    from stillhouse.registry.migrate import utcnow

    return (utcnow() - _EPOCH) // _US


def _insert(con: Any, table: str, rows: list[dict[str, Any]]) -> int:
    import pyarrow as pa

    if not rows:
        return 0
    return _insert_arrow(con, table, pa.Table.from_pylist(rows, schema=arrow_schema(table)))


def _insert_arrow(con: Any, table: str, data: Any) -> int:
    if data.num_rows == 0:
        return 0
    con.register(_BATCH_VIEW, data)
    try:
        con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM {_BATCH_VIEW}")
    finally:
        con.unregister(_BATCH_VIEW)
    return data.num_rows


def _upsert(con: Any, table: str, rows: list[dict[str, Any]], keys: tuple[str, ...]) -> int:
    """Replace rows with the same key, insert the rest."""
    import pyarrow as pa

    if not rows:
        return 0
    data = pa.Table.from_pylist(rows, schema=arrow_schema(table))
    con.register(_BATCH_VIEW, data)
    try:
        match = " AND ".join(f"{table}.{k} IS NOT DISTINCT FROM b.{k}" for k in keys)
        con.execute(f"DELETE FROM {table} USING {_BATCH_VIEW} b WHERE {match}")
        con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM {_BATCH_VIEW}")
    finally:
        con.unregister(_BATCH_VIEW)
    return data.num_rows


def forget_ingested(home: Path | None = None, *, timeout: float | None = None) -> None:
    """Drop every ingested run's rows and state, so the next ingest reads all folders afresh.
    Imported runs (no ingest state) are kept."""
    with write_connection(home, timeout=timeout) as con:
        ids = [r[0] for r in con.execute("SELECT run_id FROM _ingest_state").fetchall()]
        _delete(con, (*public_tables(), "_ingest_state"), ids)
