"""Numbered schema migrations: ``migrations/NNNN_name.sql`` applied in order, each recorded in
``_migrations``. This is the only code that changes the schema."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from importlib import resources
from typing import Any

from stillhouse.registry.errors import RegistryVersionError

_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")

_BOOKKEEPING = """
CREATE TABLE IF NOT EXISTS _migrations (
    version INTEGER NOT NULL,
    name VARCHAR NOT NULL,
    applied_at TIMESTAMP NOT NULL
)
"""


def utcnow() -> datetime:
    """Now in UTC as a naive datetime: the registry stores UTC TIMESTAMPs."""
    return datetime.now(UTC).replace(tzinfo=None)


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


@lru_cache(maxsize=1)
def migrations() -> tuple[Migration, ...]:
    """Every migration shipped with the package, by version."""
    found = []
    for entry in resources.files("stillhouse.registry").joinpath("migrations").iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append(Migration(int(match.group(1)), match.group(2), entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if versions != list(range(1, len(found) + 1)):
        raise RuntimeError(f"registry migrations must be numbered 1..n without gaps, found {versions}")
    return tuple(found)


def latest_version() -> int:
    return migrations()[-1].version


def current_version(con: Any) -> int:
    """Highest applied migration, 0 for a database without the bookkeeping table."""
    exists = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE database_name = current_database() AND table_name = '_migrations'"
    ).fetchone()[0]
    if not exists:
        return 0
    return con.execute("SELECT coalesce(max(version), 0) FROM _migrations").fetchone()[0]


def migrate(con: Any, target: int | None = None) -> list[int]:
    """Apply the missing migrations up to ``target`` (default: all) on a read-write connection,
    each in its own transaction. Returns the versions applied."""
    target = latest_version() if target is None else target
    have = current_version(con)
    if have == 0:
        con.execute(_BOOKKEEPING)
    if have > latest_version():
        raise RegistryVersionError(
            f"the registry database is at schema version {have}, this Stillhouse knows up to {latest_version()}",
            hint="upgrade Stillhouse, or point STILLHOUSE_HOME elsewhere",
        )
    applied = []
    for migration in migrations():
        if migration.version <= have or migration.version > target:
            continue
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute(migration.sql)
            con.execute("INSERT INTO _migrations VALUES (?, ?, ?)", [migration.version, migration.name, utcnow()])
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        applied.append(migration.version)
    return applied
