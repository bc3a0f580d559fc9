"""Export the registry to a folder of Parquet or CSV files, and import such a folder.

An export holds one file per public table plus ``manifest.json`` (schema version, format, row
counts). Import merges: runs already in the registry are kept and their rows in the export
skipped, so importing the same folder twice changes nothing. Imported runs have no folder here
(``runs.run_dir`` is NULL), so ingest never prunes them.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stillhouse.registry.db import read_connection, write_connection
from stillhouse.registry.errors import ExportError
from stillhouse.registry.migrate import latest_version, utcnow
from stillhouse.registry.schema import public_tables

MANIFEST = "manifest.json"
EXPORT_FORMATS = ("parquet", "csv")


@dataclass
class ImportSummary:
    imported: list[str]
    skipped: list[str]
    rows: int


def _quote(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def export_registry(folder: Path, fmt: str = "parquet", home: Path | None = None) -> dict[str, Any]:
    """Write every public table to ``folder`` (which must be empty or new); returns the manifest."""
    from stillhouse.registry.ingest import ingest_all

    if fmt not in EXPORT_FORMATS:
        raise ExportError(f"unknown export format '{fmt}'", hint=f"use one of: {', '.join(EXPORT_FORMATS)}")
    folder = Path(folder)
    if folder.exists() and any(folder.iterdir()):
        raise ExportError(f"{folder} is not empty", hint="export into a new or empty folder")
    folder.mkdir(parents=True, exist_ok=True)
    ingest_all(home)
    counts = {}
    with read_connection(home) as con:
        for table in public_tables():
            target = folder / f"{table}.{fmt}"
            # CSV: NULL as \N, so an empty string and a NULL stay different through a round trip.
            options = "FORMAT parquet" if fmt == "parquet" else "FORMAT csv, HEADER true, NULLSTR '\\N'"
            con.execute(f"COPY (SELECT * FROM {table} ORDER BY run_id) TO {_quote(target)} ({options})")
            counts[table] = con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    manifest = {
        "stillhouse_registry": True,
        "schema_version": latest_version(),
        "format": fmt,
        "exported_at": utcnow().isoformat() + "Z",
        "tables": counts,
    }
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def _read_manifest(folder: Path) -> dict[str, Any]:
    path = Path(folder) / MANIFEST
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise ExportError(
            f"{folder} has no {MANIFEST}", hint="import a folder written by `still registry export`"
        ) from None
    except ValueError as exc:
        raise ExportError(f"{path} is not valid JSON: {exc}") from None
    if manifest.get("format") not in EXPORT_FORMATS:
        raise ExportError(f"{path}: unknown format {manifest.get('format')!r}")
    if int(manifest.get("schema_version", 0)) > latest_version():
        raise ExportError(
            f"the export has schema version {manifest['schema_version']}, this Stillhouse knows up to {latest_version()}",
            hint="upgrade Stillhouse to import it",
        )
    return manifest


def _source(con: Any, table: str, path: Path, fmt: str) -> str:
    """A SELECT over one exported file; CSV columns get the table's types (older exports may lack
    columns: INSERT ... BY NAME fills those with NULL)."""
    if fmt == "parquet":
        return f"read_parquet({_quote(path)})"
    with open(path, newline="", encoding="utf-8") as fh:
        header = next(csv.reader(fh), [])
    types = dict(
        con.execute(
            "SELECT column_name, data_type FROM duckdb_columns() WHERE database_name = current_database() "
            "AND table_name = ?",
            [table],
        ).fetchall()
    )
    unknown = [c for c in header if c not in types]
    if unknown:
        raise ExportError(f"{path}: unknown columns {', '.join(unknown)}")
    spec = ", ".join(f"'{c}': '{types[c]}'" for c in header)
    return f"read_csv({_quote(path)}, header = true, nullstr = '\\N', columns = {{{spec}}})"


def _refuse_bad_run_ids(runs_file: Path, run_ids: list[Any]) -> None:
    """A run id becomes a folder name (`still runs rm` deletes runs/<id>): an export whose ids are
    paths, empty or hold control characters is refused whole."""
    from stillhouse.kernel.errors import RunNotFoundError
    from stillhouse.kernel.runs import check_run_id

    bad = []
    for run_id in run_ids:
        try:
            check_run_id(run_id if isinstance(run_id, str) else "")
        except RunNotFoundError:
            bad.append(run_id)
    if bad:
        raise ExportError(
            f"{runs_file}: {len(bad)} run ids are not run ids (paths, empty or control characters): "
            + ", ".join(repr(b) for b in bad[:3]),
            hint="a run id is a folder name under runs/; fix the export or leave those runs out",
        )


def import_registry(folder: Path, home: Path | None = None) -> ImportSummary:
    """Merge an export folder into the registry (one transaction)."""
    folder = Path(folder)
    manifest = _read_manifest(folder)
    fmt = manifest["format"]
    runs_file = folder / f"runs.{fmt}"
    if not runs_file.exists():
        raise ExportError(f"{folder} has no runs.{fmt}")
    rows = 0
    with write_connection(home) as con:
        existing = {r[0] for r in con.execute("SELECT run_id FROM runs").fetchall()}
        incoming = [r[0] for r in con.execute(f"SELECT run_id FROM {_source(con, 'runs', runs_file, fmt)}").fetchall()]
        _refuse_bad_run_ids(runs_file, incoming)
        new = sorted(set(incoming) - existing)
        if new:
            for table in public_tables():
                path = folder / f"{table}.{fmt}"
                if not path.exists():
                    continue
                cursor = con.execute(
                    f"INSERT INTO {table} BY NAME SELECT * FROM {_source(con, table, path, fmt)} "
                    "WHERE run_id IN (SELECT unnest(?::VARCHAR[]))",
                    [new],
                )
                rows += cursor.fetchone()[0]
            con.execute("UPDATE runs SET run_dir = NULL WHERE run_id IN (SELECT unnest(?::VARCHAR[]))", [new])
    return ImportSummary(imported=new, skipped=sorted(set(incoming) & existing), rows=rows)
