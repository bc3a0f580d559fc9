"""Several teachers ([[teachers]]), the cascade and the judge, against the fake OpenAI server serving
teacher "models" of known accuracy (oracles with independent errors), over real HTTP."""

from __future__ import annotations

import json
import random
import tomllib
from pathlib import Path
from typing import Any

import pytest

from stillhouse.testing.oracle import Oracle

ENV = {"ENSEMBLE_TEST_KEY": "test-key-123456"}
LABELS = ("entailment", "neutral", "contradiction")
SUBJECTS = ("A dog", "Two women", "A child", "An old man", "A cyclist", "Three friends", "A chef", "A girl")
ACTIONS = (
    "runs across a field",
    "reads a book",
    "waits for a bus",
    "cooks dinner",
    "plays the guitar",
    "paints a fence",
)


def nli_rows(n: int, seed: int = 0) -> list[dict[str, Any]]:
    """``n`` distinct labelled NLI rows (the oracle recognises each prompt by its premise and hypothesis)."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        subject, action = SUBJECTS[i % len(SUBJECTS)], ACTIONS[(i // len(SUBJECTS)) % len(ACTIONS)]
        rows.append(
            {
                "premise": f"{subject} {action} on day {i}.",
                "hypothesis": f"Someone {rng.choice(['is outside', 'is busy', 'is alone', 'is happy'])} (case {i}).",
                "label": rng.choice(LABELS),
            }
        )
    return rows


def write(folder: Path, body: str, rows: list[dict[str, Any]], *, labelled: bool) -> Path:
    """A pipeline config over ``rows``; unlabelled rows hide the gold label from the pipeline (the
    oracles still know it), so the combined answer itself is measured, not filtered by the reference."""
    folder.mkdir(parents=True, exist_ok=True)
    gold = folder / "gold.jsonl"
    gold.write_text("".join(json.dumps(r) + "\n" for r in rows))
    shown = rows if labelled else [{k: v for k, v in r.items() if k != "label"} for r in rows]
    (folder / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in shown))
    path = folder / "pipeline.toml"
    path.write_text(f'task = "nli"\n{body}\n[data]\ntrain = "train.jsonl"\n[student]\nmodel = "unused-until-train"\n')
    return path


def teacher(
    name: str, url: str, *, weight: float = 1.0, price: tuple[float, float] = (1.0, 1.0), extra: str = ""
) -> str:
    return f'''
[[teachers]]
name = "{name}"
weight = {weight}
model = "openai/{name}"
api_base = "{url}"
api_key_env = "ENSEMBLE_TEST_KEY"
temperature = 0.0
concurrency = 4
max_retries = 1
retry_base_delay = 0.01
price = {{ input_per_mtok = {price[0]}, output_per_mtok = {price[1]} }}
{extra}'''


def gold_of(rows: list[dict[str, Any]], record: dict[str, Any]) -> str:
    """The gold label of a sample, found by its premise and hypothesis in the student prompt."""
    text = record["prompt"][-1]["content"]
    return next(r["label"] for r in rows if r["premise"] in text and r["hypothesis"] in text)


def only_run(home: Path) -> Path:
    runs = [p for p in (home / "runs").iterdir() if p.is_dir()]
    assert len(runs) == 1
    return runs[0]


def samples(run_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run_dir / "samples.jsonl").read_text().splitlines() if line.strip()]


def events(run_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines() if line.strip()]


@pytest.mark.slow  # three teachers start their engines one after another: ~20 s here
def test_the_vote_beats_the_best_single_teacher_and_rejects_disputes(tmp_path, run_still, stillhouse_home, fake_server):
    rows = nli_rows(100)
    folder = tmp_path / "vote"
    config_body = "[ensemble]\nmin_agreement = 0.5\n" + "".join(teacher(name, "URL") for name in ("t1", "t2", "t3"))
    config = write(folder, config_body, rows, labelled=False)
    gold_file = folder / "gold.jsonl"
    oracles = {f"t{i}": Oracle(gold_file, "nli", p=p, seed=10 + i) for i, p in enumerate((0.6, 0.65, 0.7), start=1)}
    server = fake_server(models=oracles)
    config.write_text(config.read_text().replace('"URL"', f'"{server.url}"'))

    result = run_still("run", str(config), "--stage", "generate", "--stage", "filter", env=ENV)
    assert result.exit_code == 0, result.output
    run_dir = only_run(stillhouse_home)
    records = samples(run_dir)
    assert len(records) == len(rows)
    single = {name: 0 for name in oracles}
    vote = disputed = all_differ = 0
    for record in records:
        truth = gold_of(rows, record)
        answers = {a["teacher"]: a["answers"][0] for a in record["teacher_answers"]}
        assert set(answers) == set(oracles)  # every teacher's answer is kept with the sample
        for name, answer in answers.items():
            single[name] += answer == truth
        vote += record["parsed_answer"] == truth
        all_differ += len(set(answers.values())) == 3
        disputed += record["reason"] == "teachers_disagree"
        if record["reason"] != "teachers_disagree":
            assert record["confidence"] >= 0.5
    # every teacher asked every row once, counted at the server
    assert all(server.stats.by_model[name] == len(rows) for name in oracles)
    assert vote > max(single.values()), (vote, single)
    # three votes of weight 1: a 1-1-1 split has agreement 1/3 < 0.5, any majority 2/3 or more
    assert disputed == all_differ > 0
    summary = next(e for e in events(run_dir) if e["type"] == "stage_finished" and e["stage"] == "generate")["summary"]
    assert set(summary["teachers"]) == set(oracles) and all(
        t["calls"] == len(rows) for t in summary["teachers"].values()
    )
    assert summary["cost_usd"] > 0
    calls = [e for e in events(run_dir) if e["type"] == "teacher_call"]
    assert {e["teacher"] for e in calls} == set(oracles)
    filtered = next(e for e in events(run_dir) if e["type"] == "stage_finished" and e["stage"] == "filter")["summary"]
    assert filtered["reasons"]["teachers_disagree"] == disputed
    assert sum(t["chosen"] for t in filtered["teachers"].values()) == len(rows)


def test_the_cascade_asks_the_expensive_teacher_only_where_the_cheap_one_failed(
    tmp_path, run_still, stillhouse_home, fake_server
):
    rows = nli_rows(60, seed=1)
    folder = tmp_path / "cascade"
    gold_file = folder / "gold.jsonl"
    body = (
        '[ensemble]\nmode = "cascade"\n'
        + teacher("cheap", "URL", price=(0.1, 0.1))
        + teacher("strong", "URL", price=(5.0, 5.0))
    )
    config = write(folder, body, rows, labelled=True)
    cheap, strong = Oracle(gold_file, "nli", p=0.5, seed=1), Oracle(gold_file, "nli", p=0.95, seed=2)
    server = fake_server(models={"cheap": cheap, "strong": strong})
    config.write_text(config.read_text().replace('"URL"', f'"{server.url}"'))

    result = run_still("run", str(config), "--stage", "generate", "--stage", "filter", env=ENV)
    assert result.exit_code == 0, result.output
    asked_cheap = set(server.stats.answered_by_model["cheap"])
    asked_strong = set(server.stats.answered_by_model.get("strong", {}))
    cheap_wrong = {prompt for prompt in asked_cheap if not cheap.is_right(prompt, 0)}
    assert len(asked_cheap) == len(rows)
    assert asked_strong == cheap_wrong and 0 < len(cheap_wrong) < len(rows)
    assert server.stats.by_model["strong"] == len(cheap_wrong)  # no row asked twice

    run_dir = only_run(stillhouse_home)
    summary = next(e for e in events(run_dir) if e["type"] == "stage_finished" and e["stage"] == "generate")["summary"]
    cascade = summary["cascade"]
    assert cascade["asked"] == {"cheap": len(rows), "strong": len(cheap_wrong)}
    assert cascade["expensive_calls_saved"] == len(rows) - len(cheap_wrong)
    assert 0 < cascade["cost_usd"] < cascade["expensive_alone_usd"] and cascade["saved_usd"] > 0
    assert summary["teachers"]["strong"]["cost_usd"] > summary["teachers"]["cheap"]["cost_usd"]
    assert "cascade:" in result.output and "saved $" in result.output
    records = samples(run_dir)
    strong_right = sum(1 for p in cheap_wrong if strong.is_right(p, 0))
    assert sum(r["accepted"] for r in records) == len(rows) - len(cheap_wrong) + strong_right
    assert {r["teacher"] for r in records if r["accepted"]} == {"cheap", "strong"}


def test_the_judge_scores_accepted_answers_and_applies_its_threshold(tmp_path, run_still, stillhouse_home, fake_server):
    rows = nli_rows(40, seed=2)
    folder = tmp_path / "judge"
    gold_file = folder / "gold.jsonl"
    body = """judge = { model = "openai/judge", api_base = "URL", api_key_env = "ENSEMBLE_TEST_KEY", threshold = 9.5, rubric = "Is the label right?" }
[teacher]
model = "openai/student-of-nothing"
api_base = "URL"
api_key_env = "ENSEMBLE_TEST_KEY"
max_retries = 1
"""
    config = write(folder, body, rows, labelled=False)
    teacher_oracle = Oracle(gold_file, "nli", p=0.6, seed=5)
    server = fake_server(models={"student-of-nothing": teacher_oracle, "judge": Oracle(gold_file, "nli", p=1.0)})
    config.write_text(config.read_text().replace('"URL"', f'"{server.url}"'))

    assert run_still("run", str(config), "--stage", "generate", env=ENV).exit_code == 0
    run_dir = only_run(stillhouse_home)
    # the filter has not run: its judge's threshold can still change on resume
    result = run_still("run", "--resume", run_dir.name, "--stage", "filter", "--set", "judge.threshold=5", env=ENV)
    assert result.exit_code == 0, result.output
    records = samples(run_dir)
    right = {p for p in server.stats.answered_by_model["student-of-nothing"] if teacher_oracle.is_right(p, 0)}
    assert server.stats.by_model["judge"] == len(rows)  # every answer the task accepted was judged once
    for record in records:
        assert record["judge_score"] in (2.0, 9.0) and record["judge_reason"]
        asked_right = record["parsed_answer"] == gold_of(rows, record)
        if record["judge_score"] == 9.0:
            assert record["accepted"] and asked_right
        else:
            assert record["reason"] == "judge_below_threshold" and not record["accepted"] and not asked_right
    assert sum(r["accepted"] for r in records) == len(right)
    judge_lines = (run_dir / "teacher" / "judge.jsonl").read_text().splitlines()
    assert len(judge_lines) == len(rows)
    filtered = next(e for e in events(run_dir) if e["type"] == "stage_finished" and e["stage"] == "filter")["summary"]
    assert filtered["judge"]["rejected"] == len(rows) - len(right) and filtered["judge"]["threshold"] == 5
    assert filtered["judge"]["calls"] == len(rows)


TEACHER = """
[[teachers]]
name = "a"
model = "openai/a"
"""


@pytest.mark.parametrize(
    ("body", "line", "words"),
    [
        (TEACHER + '\n[teacher]\nmodel = "openai/x"\n', 7, ["[teacher] and [[teachers]] together"]),
        (TEACHER + TEACHER, 8, ["duplicate teacher name 'a'", "teachers.1.name"]),
        (TEACHER + '\n[[teachers]]\nname = "b"\nmodel = "openai/b"\nweight = 0\n', 10, ["teachers.1.weight", "> 0"]),
        (TEACHER + '\n[[teachers]]\nname = "b"\nmodel = "openai/b"\nweight = -2.5\n', 10, ["teachers.1.weight"]),
        (TEACHER + '\n[[teachers]]\nname = "b"\nmodel = "openai/b"\ntemperature = 9\n', 10, ["teachers.1.temperature"]),
        (TEACHER + '\n[[teachers]]\nmodel = "openai/b"\n', 7, ["teachers.1.name"]),
        (
            '[teacher]\nmodel = "openai/x"\n[judge]\nrubric = "faithful"\nthreshold = 7\n',
            4,
            ["judge.model", "required"],
        ),
        ('[teacher]\nmodel = "openai/x"\n[judge]\nmodel = "openai/j"\nthreshold = 70\n', 6, ["judge.threshold"]),
        (TEACHER + '[ensemble]\nmode = "round-robin"\n', 7, ["ensemble.mode"]),
        (
            '[teacher]\nmodel = "openai/x"\n[ensemble]\nmin_agreement = 0.5\n',
            5,
            ["ensemble.min_agreement", "one [teacher]"],
        ),
        (TEACHER + '[ensemble]\nbest_of = "judge"\n', 7, ["needs a judge"]),
        (TEACHER + '[judge]\nmodel = "openai/j"\nmode = "pairwise"\n', 8, ["judge.mode", "best_of"]),
        (TEACHER + '[judge]\nmodel = "openai/j"\nmode = "listwise"\n', 8, ["judge.mode", "pairwise"]),
    ],
)
def test_bad_teacher_lists_and_judges_exit_2_naming_file_line_and_field(
    tmp_path, run_still, stillhouse_home, body, line, words
):
    config = write(tmp_path / "bad", body, nli_rows(2), labelled=True)
    result = run_still("run", str(config), env=ENV)
    assert result.exit_code == 2, result.output
    assert f"pipeline.toml:{line}" in result.output, result.output
    for word in words:
        assert word in result.output, result.output
    assert "Traceback" not in result.output
    assert not (stillhouse_home / "runs").exists() or not any((stillhouse_home / "runs").iterdir())


def test_a_teacher_list_round_trips_through_the_stored_config(tmp_path, run_still, stillhouse_home, fake_server):
    """A stored run's config holds the list and the teacher it stands for: it validates again on resume."""
    from stillhouse.kernel.config import load_config, to_toml, validate_config
    from stillhouse.kernel.plugins import get_host

    body = (
        '[ensemble]\nmode = "cascade"\n'
        + teacher("cheap", "http://127.0.0.1:9/v1")
        + teacher("strong", "http://127.0.0.1:9/v1", weight=3)
    )
    config = write(tmp_path / "rt", body, nli_rows(2), labelled=True)
    loaded = load_config(config, get_host())
    assert [t.name for t in loaded.teachers] == ["cheap", "strong"] and loaded.teachers[1].weight == 3.0
    assert loaded.pipeline.teacher.model == "openai/strong"  # a cascade stands for its last teacher
    again = validate_config(loaded.to_dict(), get_host(), source="config.json", base_dir=config.parent)
    assert again.to_dict() == loaded.to_dict() and [t.name for t in again.teachers] == ["cheap", "strong"]
    stored_toml = tomllib.loads(to_toml(loaded.to_dict()))  # config.toml leaves None values out
    assert validate_config(stored_toml, get_host(), base_dir=config.parent).to_dict() == loaded.to_dict()
    dry = run_still("run", str(config), "--dry-run", env=ENV)  # estimates every teacher, calls none
    assert dry.exit_code == 0, dry.output
    assert "2 teachers (cascade" in " ".join(dry.output.split()) and "cheap: 2 calls" in " ".join(dry.output.split())


DIALOGUES = (  # distinct enough that curation's near-duplicate check keeps all three
    "#Person1#: Good evening, I would like to book a table for two tonight.\n"
    "#Person2#: Certainly. At what time would you like to come?\n"
    "#Person1#: At seven, please, near the window if you can.\n"
    "#Person2#: A window table for two at seven. May I have your name?\n"
    "#Person1#: It is Morgan. Thank you very much.\n",
    "#Person1#: Hello, is there a room free at your hotel this weekend?\n"
    "#Person2#: We have a double room from Friday to Sunday.\n"
    "#Person1#: Great, does it include breakfast and parking?\n"
    "#Person2#: Breakfast yes, parking costs ten euros a night.\n"
    "#Person1#: Fine, please reserve it for Lee.\n",
    "#Person1#: I need a taxi to the airport tomorrow morning.\n"
    "#Person2#: What time does your flight leave?\n"
    "#Person1#: At nine, so I should leave home around six.\n"
    "#Person2#: A car will wait outside your door at six sharp.\n"
    "#Person1#: Perfect, my address is twelve Elm Street.\n",
)


def scripted(summary: str):
    def reply(messages: list[dict[str, str]], index: int) -> str:
        from stillhouse.kernel.teacher_ensemble import JUDGE_MARKER

        if any(JUDGE_MARKER in m["content"] for m in messages):  # judge: prefers the summary that has the time
            answer = messages[-1]["content"].rsplit("### Answer to grade", 1)[-1]
            return "Score: 9\nReason: names the time." if "seven" in answer else "Score: 4\nReason: vague."
        return f"Summary: {summary}"

    return reply


def write_summarization(folder: Path, body: str, rows: list[dict[str, Any]]) -> Path:
    folder.mkdir()
    (folder / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    config = folder / "pipeline.toml"
    config.write_text(f'task = "summarization"\n{body}\n[data]\ntrain = "train.jsonl"\n[student]\nmodel = "unused"\n')
    return config


@pytest.mark.parametrize("best_of", ["verifier", "judge"])
def test_free_text_takes_the_best_answer_by_the_verifier_or_the_judge(
    tmp_path, run_still, stillhouse_home, fake_server, best_of
):
    rows = [{"dialogue": d, "summary": "A booking is made."} for d in DIALOGUES]
    if best_of == "verifier":  # the heavier teacher's summary is longer than the dialogue: too_long
        heavy = scripted("Morgan calls the restaurant " + "and talks at great length " * 20 + "about a table.")
    else:  # both pass the verifier; the judge prefers the one that names the time
        heavy = scripted("Two people talk about going out for dinner tonight.")
    models = {
        "heavy": heavy,
        "light": scripted("#Person1# books a window table for two at seven tonight."),
        "judge": scripted(""),
    }
    server = fake_server(models=models)
    judge = f'judge = {{ model = "openai/judge", api_base = "{server.url}", api_key_env = "ENSEMBLE_TEST_KEY", threshold = 5 }}\n'
    body = (
        judge
        + f'[ensemble]\nbest_of = "{best_of}"\n'
        + teacher("heavy", server.url, weight=3)
        + teacher("light", server.url)
    )
    config = write_summarization(tmp_path / best_of, body, rows)
    result = run_still("run", str(config), "--stage", "generate", "--stage", "filter", env=ENV)
    assert result.exit_code == 0, result.output
    records = samples(only_run(stillhouse_home))
    assert [r["teacher"] for r in records] == ["light"] * len(rows)
    assert all(r["accepted"] and "seven" in r["parsed_answer"] and r["judge_score"] == 9.0 for r in records)
    assert all({a["teacher"] for a in r["teacher_answers"]} == {"heavy", "light"} for r in records)
    # best-of by the judge scores both answers of each row; the final check of the chosen one is a cache hit
    assert server.stats.by_model["judge"] == (2 if best_of == "judge" else 1) * len(rows)


def test_a_resumed_generate_asks_each_teacher_only_what_it_has_not_answered(
    tmp_path, run_still, stillhouse_home, fake_server
):
    rows = nli_rows(6, seed=3)
    rows[2]["hypothesis"] += " [[fail:500]]"  # every teacher fails this row, every time
    folder = tmp_path / "resume"
    body = teacher("a", "URL") + teacher("b", "URL", weight=2)
    config = write(folder, body, rows, labelled=False)
    oracles = {
        "a": Oracle(folder / "gold.jsonl", "nli", p=0.8, seed=1),
        "b": Oracle(folder / "gold.jsonl", "nli", p=0.8, seed=2),
    }
    server = fake_server(models=oracles)
    config.write_text(config.read_text().replace('"URL"', f'"{server.url}"'))

    first = run_still("run", str(config), "--stage", "generate", env=ENV)
    assert first.exit_code != 2, first.output
    run_dir = only_run(stillhouse_home)
    summary = next(e for e in events(run_dir) if e["type"] == "stage_finished" and e["stage"] == "generate")["summary"]
    assert summary["incomplete"] and summary["failed"] == 1 and summary["answered"] == 5
    answered = {name: sum(server.stats.answered_by_model[name].values()) for name in oracles}
    assert answered == {"a": 5, "b": 5}

    again = run_still("run", "--resume", run_dir.name, "--stage", "generate", env=ENV)
    assert again.exit_code != 2, again.output
    # only the failed row is asked again (twice: once per teacher, with its retry), nothing answered twice
    assert {name: sum(server.stats.answered_by_model[name].values()) for name in oracles} == answered
    failing = next(p for p in server.stats.seen if "[[fail:500]]" in p)
    assert server.stats.seen[failing] == 2 * 2 * 2  # 2 runs x 2 teachers x (1 try + 1 retry)


@pytest.mark.slow  # two runs of three teachers with 0.2 s of latency per answer
def test_vote_asks_the_teachers_at_once_and_gives_what_one_after_another_gives(
    tmp_path, run_still, stillhouse_home, fake_server, monkeypatch
):
    from stillhouse.kernel import teacher_ensemble

    rows = nli_rows(16, seed=5)
    names = ("t1", "t2", "t3")
    outcomes = {}
    full = teacher_ensemble.MAX_CONCURRENT_TEACHERS
    for workers in (1, full):  # one after another first: litellm's first call in a process is slow
        monkeypatch.setattr(teacher_ensemble, "MAX_CONCURRENT_TEACHERS", workers)
        home = tmp_path / f"home-{workers}"  # a cache of its own: every answer comes from the server
        home.mkdir()
        monkeypatch.setenv("STILLHOUSE_HOME", str(home))
        folder = tmp_path / f"workers-{workers}"
        body = "".join(teacher(name, "URL", weight=w) for name, w in zip(names, (1, 2, 1.5), strict=True))
        config = write(folder, body, rows, labelled=False)
        oracles = {n: Oracle(folder / "gold.jsonl", "nli", p=0.7, seed=20 + i) for i, n in enumerate(names)}
        server = fake_server(models=oracles, latency_s=0.2)
        config.write_text(config.read_text().replace('"URL"', f'"{server.url}"'))
        result = run_still("run", str(config), "--stage", "generate", "--stage", "filter", env=ENV)
        assert result.exit_code == 0, result.output
        run_dir = only_run(home)
        # every teacher asked every row once, counted at the server
        assert {n: server.stats.by_model[n] for n in names} == dict.fromkeys(names, len(rows))
        generated = next(e for e in events(run_dir) if e["type"] == "stage_finished" and e["stage"] == "generate")
        outputs = sorted(
            (r["teacher"], r["sample_id"], r["completions"][0]["text"])
            for r in map(json.loads, (run_dir / "teacher" / "outputs.jsonl").read_text().splitlines())
        )
        outcomes[workers] = (generated["summary"], samples(run_dir), outputs, server.stats.max_inflight)
    at_once, in_order = outcomes[full], outcomes[1]
    # one teacher's engine has at most `concurrency = 4` requests in flight; more means teachers overlapped
    assert in_order[3] <= 4 < at_once[3]
    assert at_once[0] == in_order[0]
    assert at_once[2] == in_order[2]
    # the filter's samples, record for record (each run read its own copy of the data: the path differs)
    assert [{**r, "source": None} for r in at_once[1]] == [{**r, "source": None} for r in in_order[1]]


def pairwise_scripted(summary: str, *, biased: bool = False):
    """A teacher that also judges: pairwise, it prefers the answer that names the time (or, biased,
    always the first one shown); pointwise, it scores as :func:`scripted` does."""

    def reply(messages: list[dict[str, str]], index: int) -> str:
        from stillhouse.kernel.teacher_ensemble import PAIRWISE_MARKER
        from stillhouse.testing.oracle import split_pair

        if any(PAIRWISE_MARKER in m["content"] for m in messages):
            if biased:
                return "Winner: A\nReason: the first answer reads well."
            _, first, second = split_pair(messages[-1]["content"])
            if ("seven" in first) == ("seven" in second):
                return "Winner: tie\nReason: equally vague."
            return f"Winner: {'A' if 'seven' in first else 'B'}\nReason: names the time."
        return scripted(summary)(messages, index)

    return reply


@pytest.mark.parametrize("biased", [False, True])
def test_the_pairwise_judge_asks_each_pair_in_both_orders_and_counts_only_consistent_wins(
    tmp_path, run_still, stillhouse_home, fake_server, biased
):
    rows = [{"dialogue": d, "summary": "A booking is made."} for d in DIALOGUES]
    models = {
        "heavy": pairwise_scripted("Two people talk about going out for dinner tonight.", biased=biased),
        "light": pairwise_scripted("#Person1# books a window table for two at seven tonight."),
        "mid": pairwise_scripted("Someone makes a plan with another person."),
    }
    server = fake_server(models=models)
    # the judge is the heavy teacher's own model: a self-preference the run warns about
    judge = (
        f'judge = {{ model = "openai/heavy", api_base = "{server.url}", api_key_env = "ENSEMBLE_TEST_KEY", '
        'mode = "pairwise" }\n'
    )
    body = judge + '[ensemble]\nbest_of = "judge"\n' + "".join(
        teacher(name, server.url, weight=w) for name, w in (("heavy", 3), ("light", 1), ("mid", 2))
    )
    config = write_summarization(tmp_path / "pairwise", body, rows)
    result = run_still("run", str(config), "--stage", "generate", "--stage", "filter", env=ENV)
    assert result.exit_code == 0, result.output
    run_dir = only_run(stillhouse_home)
    records = samples(run_dir)
    firsts = set()
    for record in records:
        comparisons = record["judge_comparisons"]
        assert {frozenset((c["first"], c["second"])) for c in comparisons} == {
            frozenset(p) for p in (("heavy", "light"), ("heavy", "mid"), ("light", "mid"))
        }
        for c in comparisons:
            firsts.add(c["first"])
            # the order is recorded with its seed, which reproduces it: the pair in list order, kept or swapped
            listed = sorted((c["first"], c["second"]), key=["heavy", "light", "mid"].index)
            assert c["order_seed"] == f"{run_dir.name}:{record['sample_id']}:{listed[0]}:{listed[1]}"
            assert (c["first"] == listed[0]) == (random.Random(c["order_seed"]).random() < 0.5)
            if biased:  # "A" both times: once for each answer, so never a win
                assert c["verdicts"] == ["A", "A"] and c["winner"] is None
            elif "light" in (c["first"], c["second"]):  # the verdicts follow the order each was shown in
                assert c["verdicts"] == (["A", "B"] if c["first"] == "light" else ["B", "A"])
                assert c["winner"] == "light" and c["reasons"] == ["names the time."] * 2
            else:
                assert c["verdicts"] == ["tie", "tie"] and c["winner"] is None
        assert "won" in record["judge_verdict"]
    # every row: its teacher by the judge's consistent wins, or with no win at all by weight
    assert [r["teacher"] for r in records] == ["heavy" if biased else "light"] * len(rows)
    assert len(firsts) > 1  # the order is drawn per pair, not always the list order
    # 3 pairs x 2 orders per row, then the one pointwise check of the chosen answer
    assert server.stats.by_model["heavy"] == len(rows) + (3 * 2 + 1) * len(rows)
    warnings = [e["message"] for e in events(run_dir) if e["type"] == "log" and e.get("level") == "warning"]
    assert any("self-preference" in m and "heavy" in m for m in warnings)
    assert "self-preference" in result.output
    filtered = next(e for e in events(run_dir) if e["type"] == "stage_finished" and e["stage"] == "filter")["summary"]
    assert filtered["judge"]["self_preference"] == ["heavy"] and filtered["judge"]["mode"] == "pairwise"


def test_the_fake_servers_pairwise_judge_prefers_the_answer_its_oracle_accepts(tmp_path):
    from stillhouse.kernel.teacher_ensemble import FIRST_HEADING, QUESTION_HEADING, SECOND_HEADING
    from stillhouse.testing.oracle import pairwise_reply

    rows = nli_rows(1)
    gold = tmp_path / "gold.jsonl"
    gold.write_text(json.dumps(rows[0]) + "\n")
    oracle = Oracle(gold, "nli", p=1.0, seed=0)
    wrong = next(label for label in LABELS if label != rows[0]["label"])
    question = f"{QUESTION_HEADING}Premise: {rows[0]['premise']}\nHypothesis: {rows[0]['hypothesis']}\n"

    def prompt(a: str, b: str) -> str:
        return f"{question}{FIRST_HEADING}Answer: {a}\n{SECOND_HEADING}Answer: {b}"

    assert pairwise_reply(oracle, prompt(rows[0]["label"], wrong)).startswith("Winner: A")
    assert pairwise_reply(oracle, prompt(wrong, rows[0]["label"])).startswith("Winner: B")
    assert pairwise_reply(oracle, prompt(wrong, wrong)).startswith("Winner: tie")
