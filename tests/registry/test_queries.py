"""registry/queries.py, the read API `still runs` and the TUI share, on the standard fabricated runs."""

from __future__ import annotations

import tomllib
from fnmatch import fnmatch
from pathlib import Path

import pytest

from stillhouse.kernel.runs import STAGES
from stillhouse.registry import queries
from stillhouse.testing.sample_runs import standard_runs

SPECS = {spec.run_id: spec for spec in standard_runs()}
NLI_MINI = "20261120-090000-nli-mini-a001"
FAILED = "20261127-090000-nli-fail-a008"
LIVE = "20261128-090000-qa-live-a009"


@pytest.fixture
def ingested(filled_home: Path) -> Path:
    from stillhouse.registry.ingest import ingest_all

    ingest_all(filled_home)
    return filled_home


def test_runs_overview_agrees_with_run_summary(ingested: Path) -> None:
    """The Runs screen's own query and the documented view give every run the same key numbers."""
    overview = {run.run_id: run for run in queries.runs_overview(ingested, ingest=False)}
    summary = queries.read_query(
        "SELECT run_id, name, task, status, teacher_model, student_model, primary_metric, teacher_score, "
        "baseline_score, coalesce(student_score, model_score) AS student_score, epoch(started_at) AS started "
        "FROM run_summary",
        home=ingested,
        ingest=False,
    ).dicts()
    assert sorted(overview) == sorted(SPECS)
    for row in summary:
        run = overview[row["run_id"]]
        assert (
            run.name, run.task, run.status, run.teacher_model, run.student_model, run.primary_metric,
            run.teacher_score, run.baseline_score, run.student_score, run.started,
        ) == (
            row["name"], row["task"], row["status"], row["teacher_model"], row["student_model"], row["primary_metric"],
            row["teacher_score"], row["baseline_score"], row["student_score"], row["started"],
        )  # fmt: skip
    assert overview[NLI_MINI].teacher_score == 0.90 and overview[NLI_MINI].student_score == 0.87


def test_runs_overview_stages_and_newest_first(ingested: Path) -> None:
    runs = queries.runs_overview(ingested, ingest=False)
    assert [run.run_id for run in runs] == sorted(SPECS, reverse=True)  # ids start with their start time
    assert [run.run_id for run in queries.runs_overview(ingested, ingest=False, newest=3)] == [
        r.run_id for r in runs[:3]
    ]
    by_id = {run.run_id: run for run in runs}
    assert set(by_id[NLI_MINI].finished_stages) == set(STAGES) and by_id[NLI_MINI].current_stage is None
    assert by_id[FAILED].status == "failed" and "train" not in by_id[FAILED].finished_stages
    assert by_id[LIVE].status == "running" and by_id[LIVE].current_stage in STAGES


def test_matching_run_ids_puts_the_exact_id_first(ingested: Path) -> None:
    assert queries.matching_run_ids(NLI_MINI, home=ingested, ingest=False) == [NLI_MINI]
    nli = queries.matching_run_ids("nli", home=ingested, ingest=False)
    assert nli == sorted(run_id for run_id in SPECS if "-nli-" in run_id)
    assert queries.matching_run_ids("no-such-run", home=ingested, ingest=False) == []


def test_run_details_has_every_aspect_in_reading_order(ingested: Path) -> None:
    details = queries.run_details(NLI_MINI, home=ingested, ingest=False)
    names = [name for name, _ in details.sections()]
    assert names == ["summary", "stages", "evaluation", "exports", "training", "rejections", "artifacts", "problems"]
    assert details.summary.dicts()[0]["run_id"] == NLI_MINI
    assert len(details.evaluation) and len(details.stages) == len(STAGES)
    with_config = queries.run_details(NLI_MINI, with_config=True, home=ingested, ingest=False)
    assert with_config.config is not None and ("train.learning_rate",) in [row[:1] for row in with_config.config.rows]
    assert [name for name, _ in with_config.sections()][-1] == "config"
    assert not len(queries.run_details("no-such-run", home=ingested, ingest=False).summary)


def test_compare_two_runs(ingested: Path) -> None:
    other = "20261121-090000-nli-lr-a002"
    config = queries.config_differences(NLI_MINI, other, home=ingested, ingest=False).dicts()
    assert {"key": "train.learning_rate", "a": "2e-05", "b": "0.0001"} in config
    metrics = queries.metric_comparison(NLI_MINI, other, home=ingested, ingest=False)
    rows = {(r["metric"], r["role"]): (r["a"], r["b"]) for r in metrics.dicts()}
    assert rows[("student_score", "run")] == ("0.87", "0.78")
    assert metrics.column("metric")[: len(queries.COMPARED_SUMMARY_COLUMNS)] == list(queries.COMPARED_SUMMARY_COLUMNS)


def test_run_process_and_endings(ingested: Path) -> None:
    live = queries.run_process(LIVE, home=ingested, ingest=False)
    assert live is not None and live.status == "running" and live.pid
    assert queries.run_process("no-such-run", home=ingested, ingest=False) is None
    endings = {run.run_id: run for run in queries.run_endings(home=ingested, ingest=False)}
    assert sorted(endings) == sorted(SPECS)
    assert endings[FAILED].status == "failed" and endings[FAILED].ended is not None


def test_sql_examples_are_titled_by_their_heading() -> None:
    markdown = "# SQL\n\nIntro.\n\n### 1. Best runs\n\nWhy it helps.\n\n```sql\nSELECT 1;\n```\n\n```bash\nls\n```\n\n```sql\nSELECT 2\n```\n"
    examples = queries.parse_sql_examples(markdown)
    assert [(e.title, e.sql) for e in examples] == [("1. Best runs", "SELECT 1;"), ("SELECT 2", "SELECT 2")]


def test_the_examples_ship_as_package_data() -> None:
    """An installed wheel has no docs/: the examples are read from the package, which must list
    them among its data files."""
    pyproject = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["package-data"]["stillhouse.registry"]
    assert any(fnmatch(queries.SQL_EXAMPLES_FILE, pattern) for pattern in patterns)
    assert queries.sql_examples()[0].title == "1. The best student per task"
