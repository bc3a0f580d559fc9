"""Data curation (kernel/curation.py): duplicates and near duplicates removed before teacher calls,
evaluation leaks dropped and reported per split, balance modes, a stratified validation split, bad
options refused with exit 2, and an end-to-end run whose teacher calls are counted at the server."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from stillhouse.kernel import hookimpl
from stillhouse.kernel.config import ContaminationConfig, DataConfig, DedupConfig
from stillhouse.kernel.curation import (
    balance_plan,
    balance_training,
    decontaminate,
    deduplicate,
    describe,
    stratified_split,
)
from stillhouse.kernel.data import load_split
from stillhouse.kernel.interfaces import ChatModel, Example, StudentTrainer, TrainJob, TrainOutcome, TrainPair

SNLI = Path(__file__).parents[1] / "fixtures" / "data" / "nli.jsonl"


def snli_rows() -> list[dict[str, Any]]:
    return [json.loads(line) for line in SNLI.read_text().splitlines() if line.strip()]


def nli_task() -> Any:
    from stillhouse.testing.oracle import make_task

    return make_task("nli")


def examples(tmp_path: Path, rows: list[dict[str, Any]], split: str = "train") -> list[Example]:
    path = tmp_path / f"{split}.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return load_split(nli_task(), path, split).examples


def near_copy(row: dict[str, Any], new_id: str) -> dict[str, Any]:
    """The row with another id, other case and spacing, and its final " ." dropped: the same
    question to a reader, not the same string."""
    premise = row["premise"].removesuffix(" .").upper().replace(" ", "  ")
    return {**row, "id": new_id, "premise": premise}


# -- duplicates ---------------------------------------------------------------------------------


def test_planted_exact_and_near_duplicates_are_removed_and_counted(tmp_path: Path) -> None:
    rows = snli_rows()
    same_premise = {**rows[0], "id": "other-hypothesis", "hypothesis": "A woman is doing a cartwheel .", "label": "entailment"}
    other_label = next(label for label in ("entailment", "neutral", "contradiction") if label != rows[6]["label"])
    minimal_pair = {**near_copy(rows[6], "minimal-pair"), "label": other_label}
    planted = [*rows, {**rows[3], "id": "exact-copy"}, near_copy(rows[5], "near-copy"), same_premise, minimal_pair]
    kept, report = deduplicate(examples(tmp_path, planted), DedupConfig(), "train")

    ids = [e.id for e in kept]
    assert "exact-copy" not in ids and "near-copy" not in ids
    assert "other-hypothesis" in ids  # one premise, another hypothesis: another question
    assert "minimal-pair" in ids and report["kept_other_reference"] == 1  # near-identical, another gold label
    assert report["before"] == len(rows) + 4 and report["after"] == len(rows) + 2
    assert report["removed"] == {"exact": 1, "near": 1}
    by_id = {e["id"]: e for e in report["examples"]}
    assert by_id["exact-copy"]["kept"] == rows[3]["id"] and by_id["exact-copy"]["similarity"] == 1.0
    assert by_id["near-copy"]["kept"] == rows[5]["id"] and 0.9 <= by_id["near-copy"]["similarity"] < 1.0
    assert "1 exact, 1 near duplicates removed" in describe(report)


def test_dedup_options_switch_each_kind_off(tmp_path: Path) -> None:
    rows = snli_rows()[:6]
    planted = examples(tmp_path, [*rows, {**rows[0], "id": "copy"}, near_copy(rows[1], "near")])
    _, exact_only = deduplicate(planted, DedupConfig(near=False), "train")
    assert exact_only["removed"] == {"exact": 1, "near": 0}
    _, near_only = deduplicate(planted, DedupConfig(exact=False), "train")
    assert near_only["removed"] == {"exact": 0, "near": 2}  # an exact copy is also a near one
    _, strict = deduplicate(planted, DedupConfig(threshold=1.0), "train")
    assert strict["removed"] == {"exact": 1, "near": 0}  # the near copy is below 1.0


# -- contamination ------------------------------------------------------------------------------


def test_a_planted_test_set_leak_is_dropped_and_reported_per_split(tmp_path: Path) -> None:
    rows = snli_rows()
    train = examples(tmp_path, rows[:16])
    test = examples(tmp_path, [*rows[16:20], near_copy(rows[2], "test-leak")], "test")
    validation = examples(tmp_path, [*rows[20:], {**rows[7], "id": "validation-leak"}], "validation")

    kept, report = decontaminate(train, {"test": test, "validation": validation}, ContaminationConfig())
    assert {e.id for e in train} - {e.id for e in kept} == {rows[2]["id"], rows[7]["id"]}
    assert report["matches"] == {"test": 1, "validation": 1} and report["leaked"] == 2
    assert report["before"] == 16 and report["after"] == 14
    shown = {e["split"]: e for e in report["examples"]}
    assert shown["test"]["id"] == rows[2]["id"] and shown["test"]["matches"] == "test-leak"
    assert shown["validation"]["similarity"] == 1.0
    line = describe(report)
    assert "2 training rows match an evaluation row (1 like test, 1 like validation): dropped" in line

    kept, report = decontaminate(train, {"test": test}, ContaminationConfig(mode="report"))
    assert len(kept) == 16 and report["leaked"] == 1  # counted, kept


def test_a_row_in_both_validation_and_test_is_reported_and_dropped_from_validation(tmp_path: Path) -> None:
    from stillhouse.kernel.config import pipeline_model
    from stillhouse.kernel.curation import curate_splits, curation_counts
    from stillhouse.kernel.data import LoadedSplit

    rows = snli_rows()
    loaded = {
        "train": examples(tmp_path, rows[:12]),
        "validation": examples(tmp_path, [*rows[12:16], near_copy(rows[20], "in-both")], "validation"),
        "test": examples(tmp_path, rows[18:], "test"),
    }
    for mode, kept in (("drop", 4), ("report", 5)):
        splits = {name: LoadedSplit(name, list(rows_)) for name, rows_ in loaded.items()}
        cfg = pipeline_model().model_validate(
            {
                "task": "nli",
                "data": {"train": "t", "validation": "v", "test": "e", "contamination": {"mode": mode}},
                "teacher": {"model": "m"},
                "student": {"model": "s"},
            }
        )
        reports = curate_splits(nli_task(), cfg, splits, seed=0)
        report = next(r for r in reports if r["step"] == "contamination" and r["split"] == "validation")
        assert report["matches"] == {"test": 1} and report["leaked"] == 1
        assert [(e["id"], e["matches"]) for e in report["examples"]] == [("in-both", rows[20]["id"])]
        assert len(splits["validation"].examples) == kept
        assert ("in-both" in {e.id for e in splits["validation"].examples}) == (mode == "report")
        counts = curation_counts(reports)
        assert counts["validation_rows_in_test"] == 1 and counts["validation_rows_in_test_dropped"] == 5 - kept
        line = describe(report)
        assert "1 validation rows match an evaluation row (1 like test)" in line
        assert ("dropped from validation" in line) == (mode == "drop")
        # train is checked against the validation split that is left, and the test split
        train_report = next(r for r in reports if r["step"] == "contamination" and r["split"] == "train")
        assert train_report["leaked"] == 0


# -- balance ------------------------------------------------------------------------------------


LABELS = {f"s{i}": label for i, label in enumerate(["a"] * 6 + ["b"] * 3 + ["c"])}


def counts(plan: dict[str, tuple[int, float]]) -> dict[str, float]:
    total: Counter[str] = Counter()
    for sample_id, (copies, weight) in plan.items():
        total[LABELS[sample_id]] += copies * weight
    return dict(total)


def test_balance_modes_give_the_expected_label_counts() -> None:
    assert counts(balance_plan(LABELS, "none", 0)) == {"a": 6, "b": 3, "c": 1}
    assert counts(balance_plan(LABELS, "downsample", 0)) == {"a": 1, "b": 1, "c": 1}
    assert counts(balance_plan(LABELS, "upsample", 0)) == {"a": 6, "b": 6, "c": 6}
    weighted = counts(balance_plan(LABELS, "weights", 0))
    assert weighted == pytest.approx({"a": 10 / 3, "b": 10 / 3, "c": 10 / 3})
    assert balance_plan(LABELS, "downsample", 1) != balance_plan(LABELS, "downsample", 2)  # seeded choice
    assert balance_plan(LABELS, "downsample", 1) == balance_plan(LABELS, "downsample", 1)


def _records(tmp_path: Path) -> tuple[list[dict[str, Any]], list[TrainPair], Any]:
    """Samples as the filter writes them (the teacher's answer, not the gold label), one pair each."""
    rows = snli_rows()
    train = examples(tmp_path, rows)
    loaded = type("Split", (), {"examples": train, "columns": {}})()
    teacher = ["entailment"] * 12 + ["neutral"] * 8 + ["contradiction"] * 4
    records = [
        {"sample_id": e.id, "split": "train", "accepted": i != 0, "parsed_answer": teacher[i]} for i, e in enumerate(train)
    ]
    pairs = [TrainPair(e.id, [{"role": "user", "content": e.id}], teacher[i]) for i, e in enumerate(train) if i != 0]
    return records, pairs, loaded


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("none", {"contradiction": 4, "entailment": 11, "neutral": 8}),
        ("downsample", {"contradiction": 4, "entailment": 4, "neutral": 4}),
        ("upsample", {"contradiction": 11, "entailment": 11, "neutral": 11}),
        ("weights", {"contradiction": 4, "entailment": 11, "neutral": 8}),
    ],
)
def test_balance_training_reports_input_accepted_and_training(tmp_path: Path, mode: str, expected: dict[str, int]) -> None:
    records, pairs, loaded = _records(tmp_path)
    data = DataConfig(train="x", balance=mode)  # type: ignore[arg-type]
    balanced, report = balance_training(pairs, data, nli_task(), records, loaded, seed=0)
    assert report is not None
    gold = Counter(str(e.reference) for e in loaded.examples)
    assert report["distributions"]["input"] == dict(sorted(gold.items()))  # the data's own labels
    assert report["distributions"]["accepted"] == {"contradiction": 4, "entailment": 11, "neutral": 8}
    assert report["distributions"]["training"] == expected
    assert Counter(p.target for p in balanced) == expected
    if mode == "weights":
        mass: Counter[str] = Counter()
        for pair in balanced:
            mass[pair.target] += pair.weight
        assert mass == pytest.approx({label: 23 / 3 for label in expected})  # each label weighs the same
        assert report["weights"]["contradiction"] == pytest.approx(23 / 12, abs=1e-3)
    assert f"({mode})" in describe(report)


def test_balance_by_a_named_column(tmp_path: Path) -> None:
    rows = [{**r, "topic": "beach" if i < 6 else "city"} for i, r in enumerate(snli_rows())]
    path = tmp_path / "topics.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    loaded = load_split(nli_task(), path, "train", keep_columns=["topic"])
    records = [{"sample_id": e.id, "split": "train", "accepted": True, "parsed_answer": "neutral"} for e in loaded.examples]
    pairs = [TrainPair(e.id, [], "x") for e in loaded.examples]
    data = DataConfig(train="x", balance="downsample", balance_by="topic")
    balanced, report = balance_training(pairs, data, nli_task(), records, loaded, seed=0)
    assert report is not None and report["by"] == "topic"
    assert report["distributions"]["input"] == {"beach": 6, "city": 18}
    assert report["distributions"]["training"] == {"beach": 6, "city": 6} and len(balanced) == 12


# -- a stratified validation split --------------------------------------------------------------


def test_stratified_split_keeps_label_proportions() -> None:
    rows = [Example(f"r{i}", "train", {"text": str(i)}, label) for i, label in enumerate(["a"] * 60 + ["b"] * 30 + ["c"] * 10)]
    kept, carved = stratified_split(rows, 0.2, seed=7, label_of=lambda e: str(e.reference))
    assert Counter(e.reference for e in carved) == {"a": 12, "b": 6, "c": 2}
    assert Counter(e.reference for e in kept) == {"a": 48, "b": 24, "c": 8}
    assert {e.id for e in kept} | {e.id for e in carved} == {e.id for e in rows}
    again, _ = stratified_split(rows, 0.2, seed=7, label_of=lambda e: str(e.reference))
    assert [e.id for e in again] == [e.id for e in kept]  # reproducible, so a resume sees the same split


# -- bad input ----------------------------------------------------------------------------------


def write_config(folder: Path, data_extra: str, task: str = "nli", train_extra: str = "") -> Path:
    (folder / "train.jsonl").write_text(SNLI.read_text())
    path = folder / "c.toml"
    path.write_text(
        f'task = "{task}"\n[data]\ntrain = "train.jsonl"\n{data_extra}\n'
        '[teacher]\nmodel = "openai/gpt-4o-mini"\n[student]\nmodel = "hf/tiny"\n' + train_extra
    )
    return path


@pytest.mark.parametrize(
    ("task", "data_extra", "field", "says"),
    [
        ("qa", 'balance = "upsample"', "data.balance", "has no label field"),
        ("nli", 'validation = "train.jsonl"\nvalidation_fraction = 0.1', "data.validation_fraction", "data.validation is given"),
        ("nli", "dedup = { threshold = 1.5 }", "data.dedup.threshold", "less than or equal to 1"),
        ("nli", 'contamination = { mode = "maybe" }', "data.contamination.mode", "drop"),
        ("nli", 'balance = "oversample"', "data.balance", "upsample"),
    ],
)
def test_bad_curation_options_exit_2_naming_the_field(
    tmp_path: Path, make_host: Any, run_still: Any, task: str, data_extra: str, field: str, says: str
) -> None:
    make_host()  # the CLI's host is this test's, not one cached for the session
    result = run_still("config", "check", str(write_config(tmp_path, data_extra, task)))
    assert result.exit_code == 2, result.output
    assert field in result.output and says in result.output
    assert "Traceback" not in result.output


def test_balance_by_a_column_no_row_has_exits_2(tmp_path: Path, make_host: Any, run_still: Any, stillhouse_home: Path) -> None:
    make_host()
    config = write_config(tmp_path, 'balance = "downsample"\nbalance_by = "topic"')
    result = run_still("run", str(config), "--stage", "generate")
    assert result.exit_code == 2, result.output
    assert "data.balance_by" in result.output and "'topic'" in result.output


def test_train_equal_to_test_stops_before_the_teacher_naming_the_option(
    tmp_path: Path, make_host: Any, run_still: Any, stillhouse_home: Path
) -> None:
    make_host()
    config = write_config(tmp_path, 'test = "train.jsonl"')
    result = run_still("run", str(config), "--stage", "generate", env={"OPENAI_API_KEY": "unused"})
    assert result.exit_code == 2, result.output
    assert "every training row nearly matches a row of the test split" in result.output
    assert "data.contamination" in result.output and "Traceback" not in result.output


@pytest.mark.parametrize(
    ("data", "train", "expected"),
    [
        ({}, {}, 0.0),  # nothing uses a validation split: no teacher calls spent on one
        ({}, {"early_stopping_patience": 2}, 0.1),  # early stopping needs a validation metric
        ({"validation_fraction": 0.0}, {"early_stopping_patience": 2}, 0.0),
        ({"validation_fraction": 0.2}, {}, 0.2),
        ({"validation": "val.jsonl"}, {"early_stopping_patience": 2}, 0.0),  # a given split wins
    ],
)
def test_the_validation_fraction_default(data: dict[str, Any], train: dict[str, Any], expected: float) -> None:
    from stillhouse.kernel.config import pipeline_model
    from stillhouse.kernel.curation import validation_fraction

    cfg = pipeline_model().model_validate(
        {"task": "nli", "data": {"train": "t.jsonl", **data}, "teacher": {"model": "m"}, "student": {"model": "s"}, "train": train}
    )
    assert validation_fraction(cfg) == expected


# -- end to end: fewer teacher calls, counted at the server --------------------------------------


class RecordingStudent(StudentTrainer):
    """Keeps what it was asked to train on, so the test sees the balanced training set."""

    name = "recording"
    seen: list[TrainPair] = []
    validation: list[TrainPair] = []

    def train(self, job: TrainJob) -> TrainOutcome:
        RecordingStudent.seen = list(job.train)
        RecordingStudent.validation = list(job.validation)
        job.output_dir.mkdir(parents=True, exist_ok=True)
        return TrainOutcome(job.output_dir, len(job.train))

    def load(self, model_dir: Path | None) -> ChatModel:
        raise NotImplementedError


class Recording:
    @hookimpl
    def register_students(self, register: Any) -> None:
        register(RecordingStudent)


@pytest.mark.slow  # litellm's first import and call take most of it
def test_duplicates_and_leaks_never_reach_the_teacher(
    tmp_path: Path, make_host: Any, fake_server: Any, stillhouse_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from stillhouse.kernel.config import load_config
    from stillhouse.kernel.pipeline import Pipeline
    from stillhouse.testing.oracle import Oracle

    rows = snli_rows()
    train = [*rows[:20], {**rows[1], "id": "dup-1"}, {**rows[1], "id": "dup-2"}, near_copy(rows[4], "near-4")]
    test = [*rows[20:], {**rows[9], "id": "leak-9"}]
    (tmp_path / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in train))
    (tmp_path / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in test))
    server = fake_server(oracle=Oracle(tmp_path / "train.jsonl", "nli", p=1.0))
    monkeypatch.setenv("FAKE_TEACHER_KEY", "test-key")
    config = tmp_path / "pipeline.toml"
    config.write_text(
        f'''task = "nli"
[data]
train = "train.jsonl"
test = "test.jsonl"
balance = "downsample"
validation_fraction = 0.25
[teacher]
model = "openai/fake-teacher"
api_base = "{server.url}"
api_key_env = "FAKE_TEACHER_KEY"
max_retries = 1
[student]
trainer = "recording"
model = "unused"
'''
    )
    host = make_host(Recording())
    seen: list[dict[str, Any]] = []
    pipeline = Pipeline.create(load_config(config, host), host, on_event=seen.append)
    assert pipeline.execute(["generate", "filter", "train"]) == "completed"

    # 23 rows: 2 exact and 1 near duplicate, then 1 row leaking into the test split, are never asked.
    assert server.stats.requests == 23 - 3 - 1
    events = [e for e in seen if e["type"] == "curation"]
    steps = {e["step"]: e for e in events}
    assert steps["dedup"]["removed"] == {"exact": 2, "near": 1}
    assert steps["contamination"]["matches"] == {"test": 1} and steps["contamination"]["examples"][0]["id"] == rows[9]["id"]
    assert steps["validation_split"]["carved"] == round(0.25 * 19)
    generate = pipeline.run.finished_stages()["generate"]
    assert generate["requests"] == 19 and generate["curation"]["train_exact_duplicates"] == 2
    assert generate["curation"]["leaked_dropped"] == 1

    balance = steps["balance"]
    training = balance["distributions"]["training"]
    assert len(set(training.values())) == 1  # downsampled: every label as often as the rarest
    assert sum(training.values()) == len({p.sample_id for p in RecordingStudent.seen})
    assert RecordingStudent.validation  # the carved split reached the trainer as validation pairs
    on_disk = [e for e in pipeline.run.events() if e["type"] == "curation"]
    assert [e["step"] for e in on_disk] == ["dedup", "contamination", "validation_split", "balance"]

    from stillhouse.plugins.reports.content import build_view, load_report_input
    from stillhouse.plugins.reports.markdown import render_markdown

    view = build_view(load_report_input(pipeline.run.dir))
    assert view.curation[0].startswith("dedup train: 23 -> 20 rows (2 exact, 1 near")
    assert "balance by label (downsample)" in view.curation[-1]
    assert "## Data curation" in render_markdown(view)
