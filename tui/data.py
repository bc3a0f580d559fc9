"""Registry rows shaped into what the TUI's screens show. The TUI reads the registry only through
its query layer, ``stillhouse.registry.queries`` (the SQL screen takes its examples and schema there too).

Everything here runs in worker threads. The registry is opened read-only per query (with its lock
retry), so the TUI never holds the database while a pipeline writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stillhouse.kernel.comparison import retention
from stillhouse.kernel.errors import UserError
from stillhouse.kernel.runs import STAGES
from stillhouse.registry.queries import read_query, runs_overview
from stillhouse.tui.catalog import RunRow


@dataclass
class QueryTable:
    columns: list[str]
    rows: list[tuple[Any, ...]]
    note: str | None = None
    """The "showing N of M rows" line when the row limit cut the result."""


USER_ROW_LIMIT = 10_000
"""Rows the SQL screen shows at most (the table pages them; more would only cost memory)."""
USER_TIMEOUT_S = 30.0


def user_query(
    sql: str,
    *,
    home: Path | None = None,
    max_rows: int = USER_ROW_LIMIT,
    time_limit: float = USER_TIMEOUT_S,
) -> QueryTable:
    """A query typed on the SQL screen: the same sandbox, row limit and time limit as `still sql`;
    errors come back as StillhouseError (shown inline by the SQL screen)."""
    if not sql.strip():
        raise UserError("the query is empty", hint="press ctrl+e for example queries")
    result = read_query(sql, home=home, max_rows=max_rows, time_limit=time_limit)
    note = result.limit_note()
    return QueryTable(
        list(result.columns), [tuple(r) for r in result.rows], note.replace(" (use --limit)", "") if note else None
    )


def registry_runs(home: Path, *, ingest: bool = False, newest: int | None = None) -> list[RunRow]:
    """Runs with their key numbers, from the registry: all of them, or the ``newest`` N (what the
    Runs screen shows first). Without ``ingest`` this reads what the registry has; the catalog adds
    and follows what it lacks from the folders. Progress counts finished stages; live runs are
    followed from their folders instead, so a stale "running" here is corrected within a second."""
    rows = []
    for run in runs_overview(home, ingest=ingest, newest=newest):
        status, finished = run.status, run.stages_finished
        t_score, s_score = run.teacher_score, run.student_score
        progress = 1.0 if status == "completed" else (finished or 0) / len(STAGES) if finished is not None else None
        rows.append(
            RunRow(
                run_id=run.run_id,
                name=run.name or run.run_id,
                task=run.task or "",
                teacher=run.teacher_model or "",
                student=run.student_model or "",
                status=status or "created",
                progress=progress,
                primary_metric=run.primary_metric,
                scores={"teacher": t_score, "baseline": run.baseline_score, "student": s_score},
                retention=retention(s_score, t_score),
                cost_usd=run.cost_usd,
                started=run.started,
                stage=run.current_stage,
                stages_done=tuple(s for s in STAGES if s in run.finished_stages) if finished is not None else None,
            )
        )
    return rows
