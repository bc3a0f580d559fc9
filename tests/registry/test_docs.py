"""docs/sql.md: the schema section equals the database's own documentation, the example section
equals the examples the package ships (what the TUI offers), and every example query runs against a
registry of realistic fabricated runs and returns what its title promises."""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

import pytest

from stillhouse.registry.queries import SQL_EXAMPLES_FILE, read_query, sql_examples
from stillhouse.registry.schema import schema_markdown

DOC = Path(__file__).resolve().parents[2] / "docs" / "sql.md"


def section(name: str) -> str:
    """The text between ``<!-- name:begin -->`` and ``<!-- name:end -->`` in docs/sql.md."""
    text = DOC.read_text(encoding="utf-8")
    return text.split(f"<!-- {name}:begin -->\n", 1)[1].split(f"<!-- {name}:end -->", 1)[0]


def examples() -> list[tuple[str, str]]:
    return [(e.title, e.sql) for e in sql_examples()]


def test_schema_section_is_current() -> None:
    assert section("schema") == schema_markdown(), (
        "docs/sql.md's schema section is stale: replace it with `still sql --schema --format markdown`"
    )


def test_examples_section_equals_the_shipped_examples() -> None:
    shipped = resources.files("stillhouse.registry").joinpath(SQL_EXAMPLES_FILE).read_text(encoding="utf-8")
    assert section("examples") == shipped, (
        f"docs/sql.md's example queries differ from registry/{SQL_EXAMPLES_FILE}, the copy the package ships: "
        "edit that file and paste it between the examples markers"
    )


def test_there_are_at_least_ten_numbered_examples() -> None:
    assert len(examples()) >= 10 and all(re.match(r"\d+\. ", title) for title, _ in examples())


@pytest.fixture(scope="module")
def registry_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from stillhouse.registry.ingest import ingest_all
    from stillhouse.testing.sample_runs import standard_runs, sweep_and_teacher_runs, write_run

    home = tmp_path_factory.mktemp("docs-registry")
    for spec in standard_runs() + sweep_and_teacher_runs():
        write_run(home, spec)
    ingest_all(home)
    return home


# What each example must show on the standard runs (beyond running and returning rows).
def _check(title: str, rows: list[dict]) -> None:
    number = int(title.split(".")[0])
    if number == 1:  # one row per task that has a distilled student, the best of them
        assert sorted(r["task"] for r in rows) == ["conversation", "math", "nli", "qa", "summarization"]
        assert next(r for r in rows if r["task"] == "nli")["student_score"] == 0.89
    elif number == 2:
        values = [r["accuracy_per_dollar"] for r in rows]
        assert values == sorted(values, reverse=True) and all(v > 0 for v in values)
    elif number == 3:
        assert len(rows) == 20 and all(r["nli_mini"] is not None and r["nli_lr"] is not None for r in rows)
    elif number == 4:
        assert {r["teacher"] for r in rows} >= {"openai/gpt-4o-mini", "openai/gpt-4o"}
        assert all(0 <= r["cache_hit_rate"] <= 1 for r in rows)
    elif number == 5:
        assert all(r["reason"] != "ok" for r in rows)
        by_task: dict[str, float] = {}
        for r in rows:
            by_task[r["task"]] = by_task.get(r["task"], 0) + r["pct_of_rejected"]
        assert all(abs(total - 100) < 0.5 for total in by_task.values())
    elif number == 6:
        assert rows and all(r["retention_pct"] >= 95 for r in rows)
    elif number == 7:
        assert {r["learning_rate"] for r in rows if r["task"] == "nli"} == {2e-5, 1e-4}
    elif number == 8:
        assert all(r["speedup"] > 1 for r in rows)
    elif number == 10:
        assert [(r["stage"], r["error"]) for r in rows] == [("train", "CUDA out of memory (simulated)")]
    elif number == 11:
        assert {r["stage"] for r in rows} == {"generate", "train"}
        assert next(r for r in rows if r["stage"] == "generate")["pct_done"] == 100
    elif number == 12:
        assert "eval" in {r["kind"] for r in rows}
    elif number == 13:  # the sweep's two trials, the unpruned one first
        assert [(r["trial"], r["pruned"], r["learning_rate"]) for r in rows] == [(0, False, 1e-4), (1, True, 2e-5)]
    elif number == 14:
        assert [r["teacher"] for r in rows] == ["judge", "t70", "t80"]
        assert next(r for r in rows if r["teacher"] == "t80")["acceptance_rate"] > 0
    elif number == 15:  # trial 0 complete (the best), trial 1 pruned without a value
        assert [(r["trial"], r["state"], r["value"], r["learning_rate"]) for r in rows] == [
            (0, "complete", 0.61, 1e-4),
            (1, "pruned", None, 2e-5),
        ]
        assert {(r["best_trial"], r["best_value"], r["complete"], r["pruned"]) for r in rows} == {(0, 0.61, 1, 1)}


@pytest.mark.parametrize(("title", "sql"), examples(), ids=[t for t, _ in examples()])
def test_example_query_runs(registry_home: Path, title: str, sql: str) -> None:
    result = read_query(sql, home=registry_home, ingest=False)
    assert result.rows, f"example '{title}' returned no rows"
    _check(title, result.dicts())
