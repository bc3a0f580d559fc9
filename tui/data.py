"""The TUI's only door into the registry: SQL through ``stillhouse.registry.db.read_query``.

Everything here runs in worker threads. The registry is opened read-only per query by
``read_query`` (with its lock retry), so the TUI never holds the database while a pipeline writes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stillhouse.kernel.errors import StillhouseError, UserError
from stillhouse.kernel.runs import STAGES
from stillhouse.tui.catalog import RunRow


class RegistryUnavailable(StillhouseError):
    title = "Registry unavailable"


@dataclass
class QueryTable:
    columns: list[str]
    rows: list[tuple[Any, ...]]
    note: str | None = None
    """The "showing N of M rows" line when the row limit cut the result."""


USER_ROW_LIMIT = 10_000
"""Rows the SQL screen shows at most (the table pages them; more would only cost memory)."""
USER_TIMEOUT_S = 30.0


def _read_query() -> Any:
    try:
        from stillhouse.registry.db import read_query
    except ImportError as exc:
        raise RegistryUnavailable(
            f"the registry is not installed ({exc})", hint="the run folders are still shown; SQL needs the registry"
        ) from None
    return read_query


def query(sql: str, params: list[Any] | None = None, *, home: Path | None = None, ingest: bool = True) -> QueryTable:
    """Run a read-only query; errors come back as StillhouseError (shown inline by the SQL screen)."""
    if not sql.strip():
        raise UserError("the query is empty", hint="press ctrl+e for example queries")
    read_query = _read_query()
    result = read_query(sql, params, home=home, ingest=ingest)
    return QueryTable(list(result.columns), [tuple(r) for r in result.rows])


def user_query(
    sql: str,
    *,
    home: Path | None = None,
    max_rows: int = USER_ROW_LIMIT,
    time_limit: float = USER_TIMEOUT_S,
) -> QueryTable:
    """A query typed on the SQL screen: the same sandbox, row limit and time limit as `still sql`."""
    if not sql.strip():
        raise UserError("the query is empty", hint="press ctrl+e for example queries")
    read_query = _read_query()
    result = read_query(sql, home=home, max_rows=max_rows, time_limit=time_limit)
    note = result.limit_note()
    return QueryTable(
        list(result.columns), [tuple(r) for r in result.rows], note.replace(" (use --limit)", "") if note else None
    )


@dataclass
class SqlExample:
    title: str
    sql: str


BUILTIN_EXAMPLES = [
    SqlExample(
        "Latest runs with their scores",
        "SELECT name, task, status, teacher_score, baseline_score, student_score, round(retention_pct, 1) AS retention_pct, cost_usd\n"
        "FROM run_summary ORDER BY started_at DESC LIMIT 50",
    ),
    SqlExample(
        "Best distilled student per task",
        "SELECT task, name, student_model, student_score, round(retention_pct, 1) AS retention_pct\nFROM run_summary\n"
        "WHERE status = 'completed' AND student_score IS NOT NULL\n"
        "QUALIFY row_number() OVER (PARTITION BY task ORDER BY student_score DESC) = 1",
    ),
    SqlExample(
        "Teacher cost and latency by model",
        "SELECT model, count(*) AS calls, sum(cost_usd) AS cost_usd, round(avg(latency_ms)) AS avg_latency_ms,\n"
        "       avg(cache_hit::INT) AS cache_hit_rate\nFROM teacher_calls GROUP BY model ORDER BY cost_usd DESC NULLS LAST",
    ),
    SqlExample(
        "Why teacher answers were rejected",
        "SELECT r.task, s.reason, count(*) AS samples\nFROM samples s JOIN runs r USING (run_id)\n"
        "WHERE NOT s.accepted GROUP BY ALL ORDER BY samples DESC",
    ),
    SqlExample(
        "Teacher vs baseline vs student, primary metric",
        "SELECT run_id, task, metric, teacher, baseline, student, round(student_vs_teacher_pct, 1) AS retention_pct\n"
        "FROM comparison WHERE is_primary ORDER BY run_id",
    ),
    SqlExample(
        "Loss curve of the newest run",
        "SELECT step, key, value FROM metrics\nWHERE key IN ('train/loss', 'eval/loss')\n"
        "  AND run_id = (SELECT run_id FROM runs ORDER BY created_at DESC LIMIT 1)\nORDER BY step, key",
    ),
    SqlExample(
        "Config keys that differ between runs",
        "SELECT key, count(DISTINCT value) AS distinct_values, list(DISTINCT value) AS values\n"
        "FROM params GROUP BY key HAVING count(DISTINCT value) > 1 ORDER BY key",
    ),
    SqlExample(
        "Stage durations",
        "SELECT stage, count(*) AS runs, round(avg(seconds), 1) AS avg_s, round(max(seconds), 1) AS max_s\n"
        "FROM stages WHERE status = 'finished' GROUP BY stage ORDER BY avg_s DESC",
    ),
]


def sql_examples(docs: Path | None = None) -> list[SqlExample]:
    """Example queries from docs/sql.md (each ```sql block, titled by the heading or line above it),
    or a built-in few when the docs are not there (an installed wheel has no docs/)."""
    path = docs or Path(__file__).resolve().parent.parent / "docs" / "sql.md"
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return list(BUILTIN_EXAMPLES)
    examples = parse_sql_examples(text)
    return examples or list(BUILTIN_EXAMPLES)


def parse_sql_examples(markdown: str) -> list[SqlExample]:
    """Each ```sql block, titled by the heading above it (else its first line)."""
    examples = []
    title = ""
    lines = markdown.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i].strip()
        if re.fullmatch(r"```\s*sql", line, re.IGNORECASE):
            body = []
            i += 1
            while i < len(lines) and not lines[i].strip().startswith("```"):
                body.append(lines[i])
                i += 1
            sql = "\n".join(body).strip()
            if sql:
                examples.append(SqlExample(title or sql.splitlines()[0][:60], sql))
                title = ""
        elif line.startswith("#"):
            title = line.lstrip("#").strip()
        i += 1
    return examples


# One row per run for the Runs screen, straight from the tables (run_summary computes much more:
# samples, tokens, losses). ``{base}`` limits the runs so the newest page can come first; the
# aggregates then touch only those runs. Progress counts finished stages; live runs are followed
# from their folders instead, so a stale "running" here is corrected within a second.
RUNS_SQL = """
WITH base AS ({base}),
scores AS (
    SELECT e.run_id,
           max(e.value) FILTER (WHERE e.role = 'teacher') AS teacher,
           max(e.value) FILTER (WHERE e.role = 'baseline') AS baseline,
           coalesce(max(e.value) FILTER (WHERE e.role = 'student'), max(e.value) FILTER (WHERE e.role = 'model')) AS student
    FROM evals e JOIN base b ON b.run_id = e.run_id AND e.metric = b.primary_metric
    GROUP BY e.run_id
),
costs AS (
    SELECT t.run_id, sum(t.cost_usd) AS cost_usd FROM teacher_calls t SEMI JOIN base b ON b.run_id = t.run_id
    GROUP BY t.run_id
),
progress AS (
    SELECT s.run_id,
           count(*) FILTER (WHERE s.status = 'finished') AS finished,
           any_value(s.stage) FILTER (WHERE s.status = 'running') AS current,
           list(s.stage) FILTER (WHERE s.status = 'finished') AS finished_stages
    FROM stages s SEMI JOIN base b ON b.run_id = s.run_id
    GROUP BY s.run_id
)
SELECT r.run_id, r.name, r.task, r.status, r.teacher_model, r.student_model, r.primary_metric,
       sc.teacher, sc.baseline, sc.student, c.cost_usd, epoch(r.created_at) AS started, p.finished, p.current, p.finished_stages
FROM base r
LEFT JOIN scores sc USING (run_id)
LEFT JOIN costs c USING (run_id)
LEFT JOIN progress p USING (run_id)
ORDER BY r.created_at DESC NULLS LAST
"""


def registry_runs(home: Path, *, ingest: bool = False, newest: int | None = None) -> list[RunRow]:
    """Runs with their key numbers, from the registry: all of them, or the ``newest`` N (what the
    Runs screen shows first). Without ``ingest`` this reads what the registry has; the catalog adds
    and follows what it lacks from the folders."""
    base = "SELECT * FROM runs" + (" ORDER BY created_at DESC NULLS LAST LIMIT ?" if newest else "")
    result = query(RUNS_SQL.format(base=base), [newest] if newest else None, home=home, ingest=ingest)
    rows = []
    for (run_id, name, task, status, teacher, student, primary, t_score, b_score, s_score, cost,
         started, finished, current, finished_stages) in result.rows:
        progress = 1.0 if status == "completed" else (finished or 0) / len(STAGES) if finished is not None else None
        rows.append(
            RunRow(
                run_id=run_id,
                name=name or run_id,
                task=task or "",
                teacher=teacher or "",
                student=student or "",
                status=status or "created",
                progress=progress,
                primary_metric=primary,
                scores={"teacher": t_score, "baseline": b_score, "student": s_score},
                retention=s_score / t_score if s_score is not None and t_score else None,
                cost_usd=cost,
                started=float(started) if started is not None else None,
                stage=current,
                stages_done=tuple(s for s in STAGES if s in (finished_stages or ())) if finished is not None else None,
            )
        )
    return rows
