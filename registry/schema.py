"""The documented schema, read from the COMMENTs the migrations put on every table, view and
column. `still sql --schema` prints it and docs/sql.md embeds it (a test keeps them equal)."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    doc: str


@dataclass(frozen=True)
class Relation:
    name: str
    kind: str  # table | view
    doc: str
    columns: tuple[Column, ...] = field(default_factory=tuple)


def catalog() -> tuple[Relation, ...]:
    """Public tables, then views, of the current schema (tables starting with _ are internal)."""
    return tuple(r for r in all_relations() if not r.name.startswith("_"))


def relation(name: str) -> Relation:
    """A table or view of the current schema, internal ones included."""
    return next(r for r in all_relations() if r.name == name)


@lru_cache(maxsize=1)
def all_relations() -> tuple[Relation, ...]:
    """Every table and view of a freshly migrated in-memory database (the current schema)."""
    import duckdb

    from stillhouse.registry.migrate import migrate

    con = duckdb.connect()
    try:
        migrate(con)
        relations = con.execute(
            "SELECT table_name, 'table', coalesce(comment, '') FROM duckdb_tables() WHERE database_name = current_database() "
            "UNION ALL SELECT view_name, 'view', coalesce(comment, '') FROM duckdb_views() "
            "WHERE database_name = current_database() AND NOT internal"
        ).fetchall()
        order = {"table": 0, "view": 1}
        out = []
        for name, kind, doc in sorted(relations, key=lambda r: (order[r[1]], _position(r[0]))):
            cols = con.execute(
                "SELECT column_name, data_type, coalesce(comment, '') FROM duckdb_columns() "
                "WHERE database_name = current_database() AND table_name = ? ORDER BY column_index",
                [name],
            ).fetchall()
            out.append(Relation(name, kind, doc, tuple(Column(*c) for c in cols)))
        return tuple(out)
    finally:
        con.close()


# Tables in the order a reader meets them (runs first); anything new sorts after, by name.
_ORDER = (
    "runs",
    "params",
    "metrics",
    "stages",
    "teacher_calls",
    "samples",
    "evals",
    "eval_samples",
    "artifacts",
    "plugins_used",
    "logs",
    "run_summary",
    "comparison",
    "metrics_latest",
)


def _position(name: str) -> tuple[int, str]:
    return (_ORDER.index(name) if name in _ORDER else len(_ORDER), name)


def public_tables() -> list[str]:
    return [r.name for r in catalog() if r.kind == "table"]


def schema_markdown() -> str:
    """The schema as Markdown: one section per table and view with a column table."""
    parts = []
    for rel in catalog():
        parts.append(f"### `{rel.name}` ({rel.kind})\n\n{rel.doc}\n")
        parts.append("| column | type | meaning |\n|---|---|---|")
        for col in rel.columns:
            parts.append(f"| `{col.name}` | {col.type} | {col.doc.replace('|', '/')} |")
        parts.append("")
    return "\n".join(parts).rstrip() + "\n"


def schema_dict() -> list[dict[str, object]]:
    return [{"name": r.name, "kind": r.kind, "doc": r.doc, "columns": [vars(c) for c in r.columns]} for r in catalog()]


@lru_cache(maxsize=64)
def arrow_schema(table: str) -> Any:
    """The Arrow schema of a table of the current schema (rows are built in Arrow, then inserted)."""
    import pyarrow as pa

    types = {
        "VARCHAR": pa.string(),
        "JSON": pa.string(),
        "DOUBLE": pa.float64(),
        "BIGINT": pa.int64(),
        "INTEGER": pa.int32(),
        "BOOLEAN": pa.bool_(),
        "TIMESTAMP": pa.timestamp("us"),
    }
    return pa.schema([(c.name, types[c.type]) for c in relation(table).columns])
