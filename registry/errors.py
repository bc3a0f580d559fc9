"""Registry errors: subclasses of the kernel's hierarchy, so the CLI and TUI render them alike."""

from __future__ import annotations

from stillhouse.kernel.errors import RegistryError, UserError


class RegistryLockError(RegistryError):
    """Another process held the database longer than the retry budget."""

    title = "Registry busy"


class RegistryVersionError(RegistryError):
    """The database was written by a newer Stillhouse (unknown migrations)."""

    title = "Registry too new"


class ReadOnlyQueryError(UserError):
    """`still sql` (and read_query) only run queries that read."""

    title = "Read-only query"


class QueryError(UserError):
    """DuckDB rejected a query: syntax, unknown table or column, bad types."""

    title = "Query failed"


class QueryTimeoutError(QueryError):
    """A query ran past its time limit and was interrupted."""

    title = "Query timed out"


class ExportError(UserError):
    """An export or import folder that cannot be used."""

    title = "Registry export/import"
