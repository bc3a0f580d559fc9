"""Opening the registry database, and the read-only query API.

DuckDB lets one process write a database file or many read it, never both at once, and holds the
file lock for as long as a connection is open. So nothing here keeps the database open: writers
(`ingest` only) open it, write one transaction and close; readers open it read-only for one query
and close. A lock conflict (IOException "Could not set lock on file ...") is retried with
exponential backoff until a deadline (``STILLHOUSE_REGISTRY_LOCK_TIMEOUT`` seconds, default 30).

Within one process, DuckDB refuses a read-only and a read-write connection to the same file at the
same time, so connections are also serialised by a process-wide lock (the TUI queries from
worker threads).
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stillhouse.kernel.errors import RegistryError, StillhouseError
from stillhouse.kernel.runs import stillhouse_home
from stillhouse.registry.errors import QueryError, ReadOnlyQueryError, RegistryLockError

log = logging.getLogger(__name__)

DB_FILE = "registry.duckdb"
LOCK_MESSAGE = "Could not set lock on file"
READ_STATEMENTS = ("SELECT", "EXPLAIN", "PRAGMA")

_process_lock = threading.RLock()


def db_path(home: Path | None = None) -> Path:
    """``$STILLHOUSE_HOME/registry.duckdb``."""
    return (home or stillhouse_home()) / DB_FILE


def lock_timeout() -> float:
    try:
        return float(os.environ.get("STILLHOUSE_REGISTRY_LOCK_TIMEOUT", "30"))
    except ValueError:
        return 30.0


def is_lock_conflict(exc: BaseException) -> bool:
    import duckdb

    return isinstance(exc, duckdb.IOException) and LOCK_MESSAGE in str(exc)


def _connect(path: Path, *, read_only: bool, timeout: float | None) -> Any:
    import duckdb

    deadline = time.monotonic() + (lock_timeout() if timeout is None else timeout)
    delay = 0.005
    while True:
        try:
            return duckdb.connect(str(path), read_only=read_only)
        except duckdb.Error as exc:
            if not is_lock_conflict(exc):
                raise RegistryError(f"cannot open {path}: {exc}", hint="is it a DuckDB database?") from None
            if time.monotonic() + delay > deadline:
                mode = "read" if read_only else "write"
                raise RegistryLockError(
                    f"could not open {path} to {mode}: another process kept it locked",
                    hint="a long import or export may be running; retry, or raise STILLHOUSE_REGISTRY_LOCK_TIMEOUT",
                    details=[str(exc)],
                ) from None
        # Jittered exponential backoff: writers hold the file for milliseconds at a time.
        time.sleep(delay * random.uniform(0.5, 1.0))
        delay = min(delay * 2, 0.2)


@contextmanager
def write_connection(home: Path | None = None, *, timeout: float | None = None) -> Iterator[Any]:
    """A read-write connection inside one transaction: schema migrated, committed on success,
    rolled back on error, closed on exit. Used by ingest (and the commands that change rows)."""
    from stillhouse.registry.migrate import migrate

    path = db_path(home)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _process_lock:
        con = _connect(path, read_only=False, timeout=timeout)
        try:
            migrate(con)
            con.execute("BEGIN TRANSACTION")
            try:
                yield con
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")
        finally:
            con.close()


def ensure_schema(home: Path | None = None) -> None:
    """Create or upgrade the database (a write connection migrates on open)."""
    with write_connection(home):
        pass


@contextmanager
def read_connection(home: Path | None = None, *, timeout: float | None = None) -> Iterator[Any]:
    """A read-only connection for one query; the database is created or migrated first if needed."""
    from stillhouse.registry.migrate import current_version, latest_version

    path = db_path(home)
    with _process_lock:
        if not path.exists():
            ensure_schema(home)
        con = _connect(path, read_only=True, timeout=timeout)
        if current_version(con) < latest_version():
            con.close()
            ensure_schema(home)
            con = _connect(path, read_only=True, timeout=timeout)
        try:
            yield con
        finally:
            con.close()


@dataclass
class QueryResult:
    """Rows of a query, with column names and DuckDB type names."""

    columns: list[str]
    rows: list[tuple[Any, ...]]
    types: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.rows)

    def dicts(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]

    def column(self, name: str) -> list[Any]:
        index = self.columns.index(name)
        return [row[index] for row in self.rows]


_parsers = threading.local()


def _parser() -> Any:
    """An in-memory connection per thread, only for parsing (opening one costs tens of ms)."""
    import duckdb

    if getattr(_parsers, "con", None) is None:
        _parsers.con = duckdb.connect()
    return _parsers.con


def split_read_statements(sql: str) -> list[Any]:
    """Parse ``sql`` and refuse anything but reads (SELECT, EXPLAIN, PRAGMA), with a clear error."""
    import duckdb

    try:
        statements = _parser().extract_statements(sql)
    except duckdb.Error as exc:
        raise QueryError(str(exc), hint="check the SQL; `still sql --schema` lists tables and columns") from None
    if not statements:
        raise QueryError("no SQL statement given", hint='e.g. still sql "select * from run_summary"')
    for statement in statements:
        kind = statement.type.name
        if kind not in READ_STATEMENTS:
            raise ReadOnlyQueryError(
                f"the registry is read-only here: {kind} statements are refused",
                hint="query with SELECT; runs change through `still run` and `still runs rm`, and the "
                "registry is rebuilt from run folders",
            )
    return statements


def read_query(
    sql: str,
    params: Sequence[Any] | None = None,
    *,
    home: Path | None = None,
    ingest: bool = True,
    timeout: float | None = None,
) -> QueryResult:
    """Run a read-only query against the registry and return its rows.

    Ingests new run-folder content first (unless ``ingest=False``); a failed ingest is logged and
    the query still answers from what is already in the database. Several statements may be given;
    the last one's rows are returned and ``params`` bind to it.
    """
    statements = split_read_statements(sql)
    if ingest:
        from stillhouse.registry import ingest as ingest_

        # One read-only connection answers both "anything new?" and, usually, the query itself.
        with read_connection(home, timeout=timeout) as con:
            todo, gone = ingest_.pending(home or stillhouse_home(), ingest_.states(con))
            if not todo and not gone:
                return _run(con, statements, params)
        try:
            ingest_.write_pending(home or stillhouse_home(), todo, gone, timeout)
        except StillhouseError as exc:  # a busy writer must not stop readers from reading
            log.warning("registry ingest skipped: %s", exc.what)
    with read_connection(home, timeout=timeout) as con:
        return _run(con, statements, params)


def _run(con: Any, statements: list[Any], params: Sequence[Any] | None) -> QueryResult:
    import duckdb

    try:
        for statement in statements[:-1]:
            con.execute(statement.query)
        cursor = con.execute(statements[-1].query, list(params) if params else None)
        description = cursor.description or []
        rows = cursor.fetchall() if description else []
    except duckdb.Error as exc:
        raise QueryError(
            str(exc).splitlines()[0] if str(exc) else type(exc).__name__,
            hint="`still sql --schema` lists tables, views and columns",
            details=str(exc).splitlines()[1:6],
        ) from None
    return QueryResult([d[0] for d in description], rows, [str(d[1]) for d in description])
