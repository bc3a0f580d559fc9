"""The registry's read API: the queries `still sql` / `still runs` and the TUI ask, as typed functions.

Code outside the registry (the TUI, scripts) reads the registry through this module only; the
tables, views and their SQL are the registry's own business. Results that callers read field by
field come back as frozen dataclasses; results that are printed as tables come back as a
``QueryResult`` (column names, rows, DuckDB types), which the renderers in ``registry/render.py``
print in any format.

Every function runs through ``read_query``: a read-only, sandboxed connection opened for the one
query, after ingesting new run-folder content unless ``ingest=False`` (a caller that has just
resolved a run id, which ingested, reads the rest without).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from importlib import resources
from pathlib import Path

from stillhouse.registry.db import QueryResult, read_query
from stillhouse.registry.schema import Column, Relation
from stillhouse.registry.schema import catalog as schema_catalog

__all__ = [
    "Column",
    "QueryResult",
    "Relation",
    "RunDetails",
    "RunEnding",
    "RunOverview",
    "RunProcess",
    "SQL_EXAMPLES_FILE",
    "SqlExample",
    "config_differences",
    "matching_run_ids",
    "metric_comparison",
    "parse_sql_examples",
    "read_query",
    "run_details",
    "run_endings",
    "run_list",
    "run_process",
    "runs_overview",
    "schema_catalog",
    "sql_examples",
]


# -- the Runs screen: one row per run ------------------------------------------------------------


@dataclass(frozen=True)
class RunOverview:
    """A run's identity and key numbers, as the registry has them (live runs are newer in their folder)."""

    run_id: str
    name: str | None
    task: str | None
    status: str | None
    teacher_model: str | None
    student_model: str | None
    primary_metric: str | None
    teacher_score: float | None
    """The primary metric per evaluated role; a standalone evaluation's "model" counts as the student."""
    baseline_score: float | None
    student_score: float | None
    cost_usd: float | None
    started: float | None
    """Epoch seconds."""
    stages_finished: int | None
    """How many stage rows say "finished"; None when the run has no stage rows yet."""
    current_stage: str | None
    finished_stages: tuple[str, ...]


# Straight from the tables, not run_summary (which computes much more: samples, tokens, losses).
# ``{base}`` limits the runs so the newest page can come first; the aggregates then touch only
# those runs.
RUNS_OVERVIEW_SQL = """
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


def runs_overview(home: Path | None = None, *, ingest: bool = True, newest: int | None = None) -> list[RunOverview]:
    """Every run, newest first, or only the ``newest`` N (what a screen shows first)."""
    base = "SELECT * FROM runs" + (" ORDER BY created_at DESC NULLS LAST LIMIT ?" if newest else "")
    result = read_query(RUNS_OVERVIEW_SQL.format(base=base), [newest] if newest else None, home=home, ingest=ingest)
    return [
        RunOverview(
            run_id=run_id,
            name=name,
            task=task,
            status=status,
            teacher_model=teacher,
            student_model=student,
            primary_metric=primary,
            teacher_score=t_score,
            baseline_score=b_score,
            student_score=s_score,
            cost_usd=cost,
            started=float(started) if started is not None else None,
            stages_finished=finished,
            current_stage=current,
            finished_stages=tuple(finished_stages or ()),
        )
        for (run_id, name, task, status, teacher, student, primary, t_score, b_score, s_score, cost,
             started, finished, current, finished_stages) in result.rows
    ]  # fmt: skip


# -- still runs list / show / compare ------------------------------------------------------------


def run_list(
    *, task: str | None = None, status: str | None = None, limit: int = 0, home: Path | None = None, ingest: bool = True
) -> QueryResult:
    """Runs newest first, with their key numbers (``limit`` 0: all)."""
    where, params = [], []
    if task:
        where.append("task = ?")
        params.append(task)
    if status:
        where.append("status = ?")
        params.append(status)
    # The column order is the order `still runs list` drops them in on a narrow terminal: last first.
    sql = (
        "SELECT run_id, name, task, status, round(student_score, 4) AS score, "
        "round(retention_pct, 1) AS retention_pct, samples_accepted, round(cost_usd, 4) AS cost_usd, "
        "started_at, teacher_model, student_model FROM run_summary"
        + (" WHERE " + " AND ".join(where) if where else "")
        + " ORDER BY started_at DESC NULLS LAST, run_id DESC"
        + (f" LIMIT {int(limit)}" if limit > 0 else "")
    )
    return read_query(sql, params, home=home, ingest=ingest)


def matching_run_ids(fragment: str, *, home: Path | None = None, ingest: bool = True) -> list[str]:
    """Run ids equal to or containing ``fragment``, the exact match first."""
    result = read_query(
        "SELECT run_id FROM runs WHERE run_id = ? OR contains(run_id, ?) ORDER BY (run_id = ?) DESC, run_id",
        [fragment, fragment, fragment],
        home=home,
        ingest=ingest,
    )
    return [str(run_id) for run_id in result.column("run_id")]


@dataclass(frozen=True)
class RunDetails:
    """Everything the registry knows about one run, one result per aspect (`still runs show`)."""

    summary: QueryResult
    """Its run_summary row (no rows when the run is unknown)."""
    stages: QueryResult
    evaluation: QueryResult
    exports: QueryResult
    """The exported students (``evaluate.export``) metric by metric, beside the distilled student."""
    training: QueryResult
    """The latest value of each training metric."""
    rejections: QueryResult
    """Rejected samples per reason."""
    artifacts: QueryResult
    problems: QueryResult
    """Logged warnings and errors."""
    config: QueryResult | None = None
    """The resolved config, one row per key (only when asked for)."""

    def sections(self) -> list[tuple[str, QueryResult]]:
        """(aspect, result) in reading order, summary first; aspects not asked for left out."""
        return [(f.name, value) for f in fields(self) if (value := getattr(self, f.name)) is not None]


RUN_DETAILS_SQL = {
    "summary": "SELECT * FROM run_summary WHERE run_id = ?",
    "stages": "SELECT stage, status, attempts, round(seconds, 1) AS seconds, started_at, finished_at, error "
    "FROM stages WHERE run_id = ? ORDER BY started_at",
    "evaluation": "SELECT metric, teacher, baseline, student, model, "
    "round(student_vs_teacher_pct, 1) AS student_vs_teacher_pct, unit "
    "FROM comparison WHERE run_id = ? ORDER BY NOT is_primary, metric",
    # roles student-FORMAT-QUANT (kernel.comparison.exported_role); change = export - distilled student
    "exports": "SELECT e.role AS export, e.metric, e.value, s.value AS student, e.value - s.value AS change, "
    "e.n, e.unit, e.reason FROM evals e LEFT JOIN evals s ON s.run_id = e.run_id AND s.role = 'student' "
    "AND s.metric = e.metric WHERE e.run_id = ? AND e.role LIKE 'student-%' ORDER BY e.role, e.metric",
    "training": "SELECT key, context, step, value, min_value, max_value, points FROM metrics_latest "
    "WHERE run_id = ? AND context <> 'progress' ORDER BY key",
    "rejections": "SELECT reason, count(*) AS samples FROM samples WHERE run_id = ? AND NOT accepted "
    "GROUP BY reason ORDER BY samples DESC",
    "artifacts": "SELECT name, path, bytes FROM artifacts WHERE run_id = ? ORDER BY name",
    "problems": "SELECT ts, level, stage, message FROM logs WHERE run_id = ? AND level IN ('warning', 'error') ORDER BY ts",
    "config": "SELECT key, value FROM params WHERE run_id = ? ORDER BY key",
}


def run_details(run_id: str, *, with_config: bool = False, home: Path | None = None, ingest: bool = True) -> RunDetails:
    """Every aspect of one run (an exact id: see ``matching_run_ids``)."""
    names = [f.name for f in fields(RunDetails) if with_config or f.name != "config"]
    # Only the first query ingests: the rest read the same state.
    results = {
        name: read_query(RUN_DETAILS_SQL[name], [run_id], home=home, ingest=ingest and i == 0)
        for i, name in enumerate(names)
    }
    return RunDetails(**results)


def config_differences(run_a: str, run_b: str, *, home: Path | None = None, ingest: bool = True) -> QueryResult:
    """The config keys whose values differ between two runs: key, a, b."""
    return read_query(
        "SELECT key, pa.value AS a, pb.value AS b FROM "
        "(SELECT key, value FROM params WHERE run_id = ?) pa "
        "FULL OUTER JOIN (SELECT key, value FROM params WHERE run_id = ?) pb USING (key) "
        "WHERE pa.value IS DISTINCT FROM pb.value ORDER BY key",
        [run_a, run_b],
        home=home,
        ingest=ingest,
    )


# The run_summary columns `still runs compare` puts side by side, in this order, before the evals.
COMPARED_SUMMARY_COLUMNS = (
    "status",
    "samples_accepted",
    "samples_rejected",
    "teacher_calls",
    "cache_hit_rate",
    "cost_usd",
    "teacher_score",
    "baseline_score",
    "student_score",
    "retention_pct",
    "final_train_loss",
    "final_eval_loss",
    "train_steps",
    "duration_s",
)


def metric_comparison(run_a: str, run_b: str, *, home: Path | None = None, ingest: bool = True) -> QueryResult:
    """Two runs' summary numbers, then every evaluated metric and role: metric, role, a, b (as text)."""
    unpivot = " UNION ALL ".join(
        f"SELECT {i} AS pos, '{c}' AS metric, 'run' AS role, CAST({c} AS VARCHAR) AS value, run_id FROM run_summary "
        "WHERE run_id IN (?, ?)"
        for i, c in enumerate(COMPARED_SUMMARY_COLUMNS)
    )
    return read_query(
        "WITH s AS (" + unpivot + "), "
        "e AS (SELECT 100 AS pos, metric, role, CAST(round(value, 6) AS VARCHAR) AS value, run_id FROM evals "
        "WHERE run_id IN (?, ?)), "
        "u AS (SELECT * FROM s UNION ALL SELECT * FROM e) "
        "SELECT metric, role, max(value) FILTER (WHERE run_id = ?) AS a, max(value) FILTER (WHERE run_id = ?) AS b "
        "FROM u GROUP BY metric, role ORDER BY min(pos), role <> 'run', metric, role",
        [run_a, run_b] * len(COMPARED_SUMMARY_COLUMNS) + [run_a, run_b, run_a, run_b],
        home=home,
        ingest=ingest,
    )


# -- still runs rm / prune -----------------------------------------------------------------------


@dataclass(frozen=True)
class RunProcess:
    """What the registry recorded about the process of a run."""

    run_id: str
    status: str | None
    pid: int | None


def run_process(run_id: str, *, home: Path | None = None, ingest: bool = True) -> RunProcess | None:
    """The recorded status and pid of one run (an exact id); None when the registry lacks it."""
    rows = read_query("SELECT status, pid FROM runs WHERE run_id = ?", [run_id], home=home, ingest=ingest).rows
    return RunProcess(run_id, rows[0][0], rows[0][1]) if rows else None


@dataclass(frozen=True)
class RunEnding:
    """A run's status, process and when it ended (`still runs prune` decides from these)."""

    run_id: str
    status: str | None
    pid: int | None
    ended: float | None
    """Epoch seconds of its last stage's end (else start); None when it has no stages."""


def run_endings(*, home: Path | None = None, ingest: bool = True) -> list[RunEnding]:
    """Every run, by id."""
    result = read_query(
        "SELECT r.run_id, r.status, r.pid, epoch(coalesce(s.finished_at, s.started_at)) AS ended "
        "FROM runs r LEFT JOIN run_summary s USING (run_id) ORDER BY r.run_id",
        home=home,
        ingest=ingest,
    )
    return [RunEnding(run_id, status, pid, ended) for run_id, status, pid, ended in result.rows]


# -- example queries -----------------------------------------------------------------------------

SQL_EXAMPLES_FILE = "sql_examples.md"
"""The example queries, shipped in this package (pyproject package-data) so an installed wheel has
them; docs/sql.md carries the same text between its ``examples`` markers (a test keeps them equal)."""


@dataclass(frozen=True)
class SqlExample:
    title: str
    sql: str


def sql_examples() -> list[SqlExample]:
    """The example queries the TUI's SQL screen offers, in their documented order."""
    text = resources.files("stillhouse.registry").joinpath(SQL_EXAMPLES_FILE).read_text(encoding="utf-8")
    return parse_sql_examples(text)


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
