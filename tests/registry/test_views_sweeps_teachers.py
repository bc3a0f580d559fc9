"""The sweep_trials and teacher_stats views (migration 0003) on a real DuckDB file, built by ingest
from fabricated run folders: two tagged trials of one sweep and a run with two [[teachers]] and a
judge. Expected values are counted from the fabricated files, not from SQL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from stillhouse.registry.db import read_query
from stillhouse.registry.ingest import ingest_all
from stillhouse.testing.sample_runs import SWEEP_ID, FakeRun, fabricate, sweep_and_teacher_runs, write_run

TRIAL_0, TRIAL_1, VOTE = sweep_and_teacher_runs()


@pytest.fixture
def views_home(home: Path) -> Path:
    for spec in sweep_and_teacher_runs():
        write_run(home, spec)
    # a one-teacher run without tags: in neither view
    write_run(home, FakeRun("20261203-090000-nli-plain-5w05", name="nli-plain", seed=24))
    ingest_all(home)
    return home


def rows(home: Path, sql: str) -> list[dict]:
    return read_query(sql, home=home, ingest=False).dicts()


def test_sweep_trials_lists_each_tagged_run_with_what_it_changed(views_home: Path) -> None:
    got = rows(views_home, "select * from sweep_trials order by trial")
    assert [(r["sweep_id"], r["trial"], r["run_id"], r["name"]) for r in got] == [
        (SWEEP_ID, 0, TRIAL_0.run_id, "nli-sweep-t0"),
        (SWEEP_ID, 1, TRIAL_1.run_id, "nli-sweep-t1"),
    ]
    assert [r["status"] for r in got] == ["completed", "completed"]
    assert [r["pruned"] for r in got] == [False, True]
    assert [r["primary_metric"] for r in got] == ["accuracy", "accuracy"]
    assert [r["student_score"] for r in got] == [0.61, 0.55]
    # lr_scheduler is the same in both trials, the name and tags differ by construction: only the
    # learning rate is a changed parameter
    assert [json.loads(r["params_changed"]) for r in got] == [
        {"train.learning_rate": 1e-4},
        {"train.learning_rate": 2e-5},
    ]


def test_best_trial_of_a_sweep(views_home: Path) -> None:
    best = rows(
        views_home,
        f"select trial, params_changed->>'train.learning_rate' as lr from sweep_trials "
        f"where sweep_id = '{SWEEP_ID}' and not pruned order by student_score desc limit 1",
    )
    assert best == [{"trial": 0, "lr": "0.0001"}]


def _expected_teacher_stats(spec: FakeRun) -> dict[str, dict]:
    files = fabricate(spec)
    out: dict[str, dict] = {}
    for event in files.events:
        if event["type"] != "teacher_call":
            continue
        entry = out.setdefault(
            event["teacher"],
            {"calls": 0, "cache_hits": 0, "tokens": 0, "cost": 0.0, "answered": None, "accepted": None},
        )
        entry["calls"] += 1
        entry["cache_hits"] += int(event["cache_hit"])
        entry["tokens"] += event["prompt_tokens"] + event["completion_tokens"]
        entry["cost"] += event["cost_usd"]
    for name, entry in out.items():
        if name == "judge":
            continue
        answered = [s for s in files.samples if any(a["teacher"] == name for a in s["teacher_answers"])]
        entry["answered"] = len(answered)
        entry["accepted"] = sum(1 for s in answered if s["teacher"] == name and s["accepted"])
        entry["agrees"] = sum(
            1
            for s in answered
            if next(a for a in s["teacher_answers"] if a["teacher"] == name)["answers"][0] == s["parsed_answer"]
        )
        scores = [s["judge_score"] for s in answered if s["teacher"] == name and "judge_score" in s]
        entry["judge"] = sum(scores) / len(scores) if scores else None
    return out


def test_teacher_stats_per_run_and_teacher(views_home: Path) -> None:
    expected = _expected_teacher_stats(VOTE)
    assert set(expected) == {"t70", "t80", "judge"}
    got = {r["teacher"]: r for r in rows(views_home, "select * from teacher_stats")}
    assert set(got) == set(expected)  # the one-teacher runs have no rows here
    assert {r["run_id"] for r in got.values()} == {VOTE.run_id}
    for name, want in expected.items():
        row = got[name]
        assert row["calls"] == want["calls"], name
        assert row["cache_hits"] == want["cache_hits"], name
        assert row["prompt_tokens"] + row["completion_tokens"] == want["tokens"], name
        assert row["cost_usd"] == pytest.approx(want["cost"]), name
    assert got["t70"]["model"] == "openai/t70" and got["t80"]["weight"] == 2.0
    assert got["judge"]["model"] == "openai/judge" and got["judge"]["weight"] is None
    assert got["t70"]["rows_asked"] == got["t80"]["rows_asked"] == VOTE.samples
    for name in ("t70", "t80"):
        want = expected[name]
        row = got[name]
        assert (row["answered"], row["accepted"]) == (want["answered"], want["accepted"]), name
        assert row["acceptance_rate"] == pytest.approx(want["accepted"] / want["answered"]), name
        assert row["agreement"] == pytest.approx(round(want["agrees"] / want["answered"], 4)), name
        assert row["mean_judge_score"] == (pytest.approx(want["judge"]) if want["judge"] is not None else None)
    # the heavier teacher wins the vote: it carries the accepted samples and agrees more
    assert got["t80"]["accepted"] > got["t70"]["accepted"]
    assert got["t80"]["agreement"] > got["t70"]["agreement"]
    assert got["judge"]["calls"] == sum(r["accepted"] for n, r in got.items() if n != "judge")


def test_ingest_keeps_the_teacher_of_calls_and_samples(views_home: Path) -> None:
    calls = rows(views_home, "select teacher, count(*) as n from teacher_calls group by teacher order by teacher")
    assert {r["teacher"] for r in calls} == {"judge", "t70", "t80", None}
    samples = rows(
        views_home,
        f"select count(*) filter (where teacher is not null) as named, count(judge_score) as judged, "
        f"count(*) filter (where accepted) as accepted from samples where run_id = '{VOTE.run_id}'",
    )
    assert samples == [{"named": VOTE.samples, "judged": samples[0]["accepted"], "accepted": samples[0]["accepted"]}]


def test_a_version_2_database_gains_the_columns_and_views(tmp_path: Path) -> None:
    import duckdb

    from stillhouse.registry.migrate import current_version, migrate

    con = duckdb.connect(str(tmp_path / "old.duckdb"))
    try:
        migrate(con, target=2)
        con.execute("INSERT INTO teacher_calls (run_id, model) VALUES ('r', 'm')")
        assert migrate(con, target=3) == [3] and current_version(con) == 3
        assert con.execute("SELECT run_id, model, teacher FROM teacher_calls").fetchall() == [("r", "m", None)]
        assert con.execute("SELECT count(*) FROM sweep_trials").fetchone() == (0,)
        assert con.execute("SELECT count(*) FROM teacher_stats").fetchone() == (0,)
        # 0004: the sweep_results table and the sweeps view, empty until a sweep records a trial
        assert migrate(con, target=4) == [4] and current_version(con) == 4
        assert con.execute("SELECT count(*) FROM sweep_results").fetchone() == (0,)
        assert con.execute("SELECT count(*) FROM sweeps").fetchone() == (0,)
    finally:
        con.close()


def test_sql_schema_documents_both_views(still, home: Path) -> None:
    result = CliRunner().invoke(still, ["sql", "--schema", "--format", "json"])
    assert result.exit_code == 0, result.output
    relations = {r["name"]: r for r in json.loads(result.output)}
    for name in ("sweep_trials", "teacher_stats"):
        assert relations[name]["kind"] == "view" and relations[name]["doc"]
        assert all(c["doc"] for c in relations[name]["columns"]), name
    assert "params_changed" in [c["name"] for c in relations["sweep_trials"]["columns"]]


def test_teacher_stats_of_a_real_two_teacher_run_with_a_judge(tmp_path, run_still, stillhouse_home, fake_server):
    """generate + filter through the pipeline against the fake OpenAI server (two oracle teachers and
    a judge, over real HTTP), then ingest: the view agrees with the run's events and samples."""
    from stillhouse.testing.oracle import Oracle

    labels = ("entailment", "neutral", "contradiction")
    rows_ = [
        {"premise": f"A person waits on day {i}.", "hypothesis": f"Someone is outside (case {i}).", "label": labels[i % 3]}
        for i in range(12)
    ]
    gold = tmp_path / "train.jsonl"
    gold.write_text("".join(json.dumps(r) + "\n" for r in rows_))
    teachers = "".join(
        f'[[teachers]]\nname = "{name}"\nweight = {weight}\nmodel = "openai/{name}"\napi_base = "URL"\n'
        f'api_key_env = "VIEWS_TEST_KEY"\ntemperature = 0.0\nmax_retries = 1\n'
        f"price = {{ input_per_mtok = {price}, output_per_mtok = {price} }}\n"
        for name, weight, price in (("low", 1.0, 0.5), ("high", 2.0, 5.0))
    )
    config = tmp_path / "pipeline.toml"
    config.write_text(
        'task = "nli"\njudge = { model = "openai/judge", api_base = "URL", api_key_env = "VIEWS_TEST_KEY", threshold = 5 }\n'
        f'{teachers}[data]\ntrain = "train.jsonl"\n[student]\nmodel = "unused-until-train"\n'
    )
    server = fake_server(
        models={
            "low": Oracle(gold, "nli", p=0.5, seed=1),
            "high": Oracle(gold, "nli", p=0.9, seed=2),
            "judge": Oracle(gold, "nli", p=1.0),
        }
    )
    config.write_text(config.read_text().replace('"URL"', f'"{server.url}"'))
    env = {"VIEWS_TEST_KEY": "test-key-123456"}
    result = run_still("run", str(config), "--stage", "generate", "--stage", "filter", env=env)
    assert result.exit_code == 0, result.output

    ingest_all(stillhouse_home)
    run_dir = next(p for p in (stillhouse_home / "runs").iterdir() if p.is_dir())
    events = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
    samples = [json.loads(line) for line in (run_dir / "samples.jsonl").read_text().splitlines()]
    got = {r["teacher"]: r for r in rows(stillhouse_home, "select * from teacher_stats")}
    assert set(got) == {"low", "high", "judge"}
    for name, row in got.items():
        calls = [e for e in events if e["type"] == "teacher_call" and e.get("teacher") == name]
        assert row["calls"] == len(calls) > 0, name
        assert row["cost_usd"] == pytest.approx(sum(e["cost_usd"] for e in calls)), name
    assert got["judge"]["calls"] == server.stats.by_model["judge"]
    for name in ("low", "high"):
        row = got[name]
        assert row["rows_asked"] == row["answered"] == len(rows_), name
        accepted = sum(1 for s in samples if s["teacher"] == name and s["accepted"])
        assert row["accepted"] == accepted and row["acceptance_rate"] == pytest.approx(accepted / len(rows_)), name
        assert 0 <= row["agreement"] <= 1
    assert got["high"]["agreement"] == 1.0  # the heavier teacher's answer always wins a two-teacher vote
    judged = [s["judge_score"] for s in samples if s["teacher"] == "high" and s.get("judge_score") is not None]
    assert got["high"]["mean_judge_score"] == pytest.approx(sum(judged) / len(judged))


def test_sweep_results_and_sweeps_hold_what_optuna_was_told(views_home: Path) -> None:
    """The sweep_trial events (after run_finished) land in sweep_results; the sweeps view counts
    them and names the best complete trial."""
    got = rows(views_home, "select * from sweep_results order by trial")
    assert [(r["run_id"], r["sweep_id"], r["trial"], r["state"]) for r in got] == [
        (TRIAL_0.run_id, SWEEP_ID, 0, "complete"),
        (TRIAL_1.run_id, SWEEP_ID, 1, "pruned"),
    ]
    assert [r["value"] for r in got] == [0.61, None]
    assert [r["pruned_at_step"] for r in got] == [None, 10]
    assert got[0]["objective"] == "accuracy" and got[0]["direction"] == "maximize" and got[0]["second_objective"] is None
    assert json.loads(got[0]["params_json"]) == {"train.learning_rate": 1e-4}
    (sweep,) = rows(views_home, "select * from sweeps")
    assert sweep["sweep_id"] == SWEEP_ID and sweep["n_trials"] == 2
    assert (sweep["trials"], sweep["complete"], sweep["pruned"], sweep["failed"]) == (2, 1, 1, 0)
    assert (sweep["best_value"], sweep["best_trial"], sweep["best_run_id"]) == (0.61, 0, TRIAL_0.run_id)


def test_sweeps_picks_the_smallest_value_when_minimizing(home: Path) -> None:
    from stillhouse.testing.sample_runs import sweep_trial_event

    for number, value in enumerate([3.0, 1.5, 2.0]):
        event = sweep_trial_event(number, "complete", [value], {"train.learning_rate": 1e-4 * (number + 1)})
        event["directions"] = ["minimize"]
        write_run(home, FakeRun(f"20261204-09000{number}-min-t{number}-5w1{number}", seed=30 + number, after_events=[event]))
    ingest_all(home)
    (sweep,) = rows(home, "select * from sweeps")
    assert (sweep["direction"], sweep["best_value"], sweep["best_trial"]) == ("minimize", 1.5, 1)
