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
import re
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stillhouse.kernel.errors import RegistryError, StillhouseError
from stillhouse.kernel.runs import stillhouse_home
from stillhouse.registry.errors import QueryError, QueryTimeoutError, ReadOnlyQueryError, RegistryLockError

log = logging.getLogger(__name__)

DB_FILE = "registry.duckdb"
LOCK_MESSAGE = "Could not set lock on file"
READ_STATEMENTS = ("SELECT", "EXPLAIN", "PRAGMA")
# PRAGMAs that only describe the database. Others change settings, import or profile to files.
READ_PRAGMAS = frozenset(
    {
        "table_info", "show", "show_tables", "show_tables_expanded", "show_databases", "database_list",
        "database_size", "storage_info", "version", "functions", "collations", "platform", "metadata_info",
        "user_agent",
    }
)  # fmt: skip

# The sandbox of every read connection. DuckDB itself refuses file and network access (COPY, ATTACH,
# read_text/read_csv/glob, INSTALL), extension loading, and any later SET of these: the parser check
# in ``split_read_statements`` is only a second layer.
SANDBOX_CONFIG: dict[str, Any] = {
    "enable_external_access": False,
    "autoload_known_extensions": False,
    "autoinstall_known_extensions": False,
    "allow_community_extensions": False,
    "allow_unsigned_extensions": False,
}
DEFAULT_MEMORY_LIMIT = "1GB"
COUNT_BUDGET_S = 2.0
"""How long a truncated result may spend counting its rows for "showing N of M"."""

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


def memory_limit() -> str:
    """``STILLHOUSE_SQL_MEMORY_LIMIT`` (a DuckDB size, e.g. ``2GB``), default 1GB per read query."""
    return os.environ.get("STILLHOUSE_SQL_MEMORY_LIMIT") or DEFAULT_MEMORY_LIMIT


def sandbox_config() -> dict[str, Any]:
    """The settings a read connection opens with, locked so no query can change them back."""
    return {**SANDBOX_CONFIG, "memory_limit": memory_limit(), "lock_configuration": True}


def _connect(path: Path, *, read_only: bool, timeout: float | None, config: dict[str, Any] | None = None) -> Any:
    import duckdb

    deadline = time.monotonic() + (lock_timeout() if timeout is None else timeout)
    delay = 0.005
    while True:
        try:
            return duckdb.connect(str(path), read_only=read_only, config=config or {})
        except duckdb.Error as exc:
            if config and "memory" in str(exc).lower():
                raise QueryError(f"bad STILLHOUSE_SQL_MEMORY_LIMIT: {exc}", hint="e.g. 2GB") from None
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
def read_connection(home: Path | None = None, *, timeout: float | None = None, sandbox: bool = False) -> Iterator[Any]:
    """A read-only connection for one query; the database is created or migrated first if needed.

    ``sandbox``: the connection cannot touch files, the network, extensions or its own settings
    (see ``SANDBOX_CONFIG``) and has a memory cap; every query a user writes runs on one."""
    from stillhouse.registry.migrate import current_version, latest_version

    path = db_path(home)
    config = sandbox_config() if sandbox else None
    with _process_lock:
        if not path.exists():
            ensure_schema(home)
        con = _connect(path, read_only=True, timeout=timeout, config=config)
        if current_version(con) < latest_version():
            con.close()
            ensure_schema(home)
            con = _connect(path, read_only=True, timeout=timeout, config=config)
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
    truncated: bool = False
    """More rows existed than the row limit let through."""
    total: int | None = None
    """The query's full row count when ``truncated`` and counting finished in time, else None."""

    def limit_note(self) -> str | None:
        """The "showing N of M rows (use --limit)" line of a truncated result, else None."""
        if not self.truncated:
            return None
        if self.total is not None:
            return f"showing {len(self.rows):,} of {self.total:,} rows (use --limit)"
        return f"showing the first {len(self.rows):,} rows; more exist (use --limit)"

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
            _refuse(kind)
        if kind == "EXPLAIN" and not _explains_a_select(statement.query):
            # EXPLAIN ANALYZE runs its statement: "EXPLAIN ANALYZE COPY ... TO 'file'" writes.
            _refuse("EXPLAIN of a non-SELECT")
        if kind == "PRAGMA" and _pragma_name(statement.query) not in READ_PRAGMAS:
            _refuse(f"PRAGMA {_pragma_name(statement.query) or '?'}")
    return statements


def _refuse(kind: str) -> None:
    raise ReadOnlyQueryError(
        f"the registry is read-only here: {kind} statements are refused",
        hint="query with SELECT; runs change through `still run` and `still runs rm`, and the "
        "registry is rebuilt from run folders",
    )


_SPACE = r"(?:\s|--[^\n]*(?:\n|$)|/\*.*?\*/)*"
_EXPLAIN = re.compile(rf"^{_SPACE}EXPLAIN{_SPACE}(?:ANALY[SZ]E\b)?(?P<rest>.*)$", re.IGNORECASE | re.DOTALL)
_OPTIONS = re.compile(rf"^{_SPACE}\([^()]*\)(?P<rest>.*)$", re.DOTALL)
_PRAGMA = re.compile(rf"^{_SPACE}PRAGMA{_SPACE}(?P<name>\w+)", re.IGNORECASE | re.DOTALL)


def _explains_a_select(query: str) -> bool:
    """Whether an EXPLAIN statement explains one SELECT; anything not shown to be one is refused."""
    import duckdb

    match = _EXPLAIN.match(query)
    if not match:
        return False
    rest = match["rest"]
    options = _OPTIONS.match(rest)
    for candidate in (rest, options["rest"] if options else None):
        if candidate is None:
            continue
        try:
            inner = _parser().extract_statements(candidate)
        except duckdb.Error:
            continue
        return len(inner) == 1 and inner[0].type.name == "SELECT"
    return False


def _pragma_name(query: str) -> str:
    match = _PRAGMA.match(query)
    return match["name"].lower() if match else ""


def read_query(
    sql: str,
    params: Sequence[Any] | None = None,
    *,
    home: Path | None = None,
    ingest: bool = True,
    timeout: float | None = None,
    max_rows: int | None = None,
    time_limit: float | None = None,
) -> QueryResult:
    """Run a read-only query against the registry and return its rows.

    Ingests new run-folder content first (unless ``ingest=False``); a failed ingest is logged and
    the query still answers from what is already in the database. Several statements may be given;
    the last one's rows are returned and ``params`` bind to it. The query runs on a sandboxed
    connection (``read_connection(sandbox=True)``).

    ``timeout`` bounds the wait for the database lock; ``time_limit`` (seconds) bounds the query
    itself (it is interrupted, QueryTimeoutError); ``max_rows`` keeps the first rows only and marks
    the result ``truncated`` (with ``total`` when counting the rest is quick).
    """
    statements = split_read_statements(sql)
    limits = _Limits(max_rows, time_limit)
    if ingest:
        from stillhouse.registry import ingest as ingest_

        # One read-only connection answers both "anything new?" and, usually, the query itself.
        with read_connection(home, timeout=timeout, sandbox=True) as con:
            todo, gone = ingest_.pending(home or stillhouse_home(), ingest_.states(con))
            dead = dead_runs(con)
            if not todo and not gone and not dead:
                return _run(con, statements, params, limits)
        try:
            ingest_.write_pending(home or stillhouse_home(), todo, gone, timeout)
            mark_dead(dead, home, timeout)
        except StillhouseError as exc:  # a busy writer must not stop readers from reading
            log.warning("registry ingest skipped: %s", exc.what)
    with read_connection(home, timeout=timeout, sandbox=True) as con:
        # What was just ingested may be a run whose process is already gone.
        dead = dead_runs(con) if ingest else []
        if not dead:
            return _run(con, statements, params, limits)
    try:
        mark_dead(dead, home, timeout)
    except StillhouseError as exc:
        log.warning("registry: marking dead runs skipped: %s", exc.what)
    with read_connection(home, timeout=timeout, sandbox=True) as con:
        return _run(con, statements, params, limits)


def dead_runs(con: Any) -> list[tuple[str, int | None]]:
    """Runs recorded as "running" whose process is gone: killed (SIGKILL, power loss) before it
    could record how it ended. Judged by ``kernel.runs.run_process_alive``, the TUI's rule too: the
    run folder's lock, else the recorded pid and that process's start time (a reused pid is not
    the run). Runs without a local folder (imported) are left as they are."""
    from stillhouse.kernel.runs import run_process_alive

    rows = con.execute(
        "SELECT run_id, pid, run_dir FROM runs WHERE status = 'running' AND run_dir IS NOT NULL"
    ).fetchall()
    dead = []
    for run_id, pid, run_dir in rows:
        folder = Path(run_dir)
        if folder.is_dir() and not run_process_alive(folder, pid):
            dead.append((run_id, pid))
    return dead


def mark_dead(dead: list[tuple[str, int | None]], home: Path | None = None, timeout: float | None = None) -> None:
    """Record "dead" for runs ``dead_runs`` found. A later run_started (a resume) sets "running"
    again; the pid condition keeps a resume that started meanwhile from being marked."""
    if not dead:
        return
    with write_connection(home, timeout=timeout) as con:
        for run_id, pid in dead:
            con.execute(
                "UPDATE runs SET status = 'dead', error = coalesce(error, ?) "
                "WHERE run_id = ? AND status = 'running' AND pid IS NOT DISTINCT FROM ?",
                [DEAD_ERROR, run_id, pid],
            )


DEAD_ERROR = "the run's process ended without recording a finish (killed?); `still run --resume` continues it"


@dataclass(frozen=True)
class _Limits:
    max_rows: int | None = None
    time_limit: float | None = None


class _Alarm:
    """Interrupts a connection's running query after ``seconds`` (from a timer thread)."""

    def __init__(self, con: Any, seconds: float | None) -> None:
        self.fired = False
        self._con = con
        self._timer = threading.Timer(seconds, self._fire) if seconds is not None else None
        if self._timer is not None:
            self._timer.daemon = True
            self._timer.start()

    def _fire(self) -> None:
        self.fired = True
        self._con.interrupt()

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()


def _run(con: Any, statements: list[Any], params: Sequence[Any] | None, limits: _Limits = _Limits()) -> QueryResult:
    import duckdb

    alarm = _Alarm(con, limits.time_limit)
    try:
        for statement in statements[:-1]:
            con.execute(statement.query)
        cursor = con.execute(statements[-1].query, list(params) if params else None)
        description = cursor.description or []
        truncated = False
        if not description:
            rows = []
        elif limits.max_rows is None:
            rows = cursor.fetchall()
        else:
            # DuckDB streams the result: only the rows fetched are ever materialised.
            rows = cursor.fetchmany(limits.max_rows + 1)
            truncated = len(rows) > limits.max_rows
            rows = rows[: limits.max_rows]
    except duckdb.Error as exc:
        if alarm.fired or isinstance(exc, duckdb.InterruptException):
            raise QueryTimeoutError(
                f"the query ran longer than {limits.time_limit:g} s and was stopped",
                hint="narrow it (WHERE, LIMIT), or allow more time with --timeout SECONDS",
            ) from None
        if isinstance(exc, duckdb.OutOfMemoryException):
            raise QueryError(
                f"the query needed more memory than the cap of {memory_limit()}",
                hint="narrow it (WHERE, LIMIT, fewer columns), or raise STILLHOUSE_SQL_MEMORY_LIMIT (e.g. 4GB)",
            ) from None
        sandboxed = isinstance(exc, duckdb.PermissionException)
        raise QueryError(
            str(exc).splitlines()[0] if str(exc) else type(exc).__name__,
            hint="SQL here reads the registry only: files, the environment and extensions are out of reach"
            if sandboxed
            else "`still sql --schema` lists tables, views and columns",
            details=str(exc).splitlines()[1:6],
        ) from None
    finally:
        alarm.cancel()
    total = _count(con, statements[-1], params) if truncated else None
    return QueryResult(
        [d[0] for d in description], rows, [str(d[1]) for d in description], truncated=truncated, total=total
    )


def _count(con: Any, statement: Any, params: Sequence[Any] | None) -> int | None:
    """The full row count of a truncated SELECT, if DuckDB finds it within COUNT_BUDGET_S."""
    import duckdb

    if statement.type.name != "SELECT":
        return None
    alarm = _Alarm(con, COUNT_BUDGET_S)
    try:
        # The newline ends a trailing "-- comment"; a trailing ";" is not valid inside the brackets.
        query = statement.query.rstrip().rstrip(";")
        row = con.execute(f"SELECT count(*) FROM (\n{query}\n)", list(params) if params else None).fetchone()
    except duckdb.Error:
        return None  # interrupted or not countable this way: "more exist" without a number
    finally:
        alarm.cancel()
    return int(row[0]) if row else None
