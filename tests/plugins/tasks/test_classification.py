"""The generic classification task: labels and descriptions from the config, parsing, verification,
scoring, bad configs refused with exit 2, and a run end to end with tiny models."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from stillhouse.kernel.interfaces import Example, Parsed
from stillhouse.plugins.tasks import ClassificationTask
from stillhouse.plugins.tasks.classification import ClassificationConfig

ROWS = [
    {"text": "WIN a FREE cruise, click now!!!", "label": "spam"},
    {"text": "Are we still on for lunch tomorrow?", "label": "ham"},
    {"text": "Cheap pills, no prescription needed", "label": "spam"},
    {"text": "The meeting moved to 3pm.", "label": "ham"},
]


def task(**options) -> ClassificationTask:  # type: ignore[no-untyped-def]
    options.setdefault("labels", ["Spam", "ham"])
    return ClassificationTask(ClassificationConfig.model_validate(options))


def example(text: str, label: str | None) -> Example:
    return Example("x", "test", {"text": text}, label)


def test_labels_and_descriptions_reach_the_prompt() -> None:
    t = task(descriptions={"spam": "unsolicited advertising or scams"})
    assert t.config.labels == ["spam", "ham"] and t.label_choices() == ["spam", "ham"]
    system = t.student_messages(example("hello", None))[0]["content"]
    assert "spam (unsolicited advertising or scams), ham" in system
    assert t.student_messages(example("hello", None))[-1]["content"] == "Text: hello"


def test_parse_verify_and_score() -> None:
    t = task()
    assert t.parse("Answer: spam").answer == "spam"
    assert t.parse("This is not spam. The answer is ham.").answer == "ham"
    assert t.parse("I cannot tell").error == "unparseable"
    assert t.verify(example("x", "ham"), Parsed(answer="spam")).reason == "label_mismatch"
    assert t.verify(example("x", "ham"), Parsed(answer="ham")).accepted
    examples = [example("a", "spam"), example("b", "ham")]
    metrics = {m.name: m for m in t.score(examples, [Parsed(answer="spam"), Parsed(answer="spam")])}
    assert metrics["accuracy"].value == 0.5 and metrics["accuracy"].n == 2
    assert t.student_targets(examples[0], Parsed(answer="spam"))[0].target == "spam"


@pytest.mark.parametrize(
    "options",
    [{"labels": []}, {"labels": ["spam"]}, {"labels": ["spam", "Spam"]}, {"labels": ["spam", "ham"], "descriptions": {"junk": "?"}}],
    ids=["empty", "one", "duplicate", "description-of-unknown-label"],
)
def test_bad_label_configs_are_refused(options: dict) -> None:
    with pytest.raises(ValidationError):
        ClassificationConfig.model_validate(options)


@pytest.mark.parametrize("labels", ["[]", '["spam", "spam"]'], ids=["empty", "duplicate"])
def test_bad_labels_exit_2_from_the_cli(tmp_path, run_still, labels: str) -> None:
    (tmp_path / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    config = tmp_path / "c.toml"
    config.write_text(
        f'task = "classification"\n[task_options]\nlabels = {labels}\n[data]\ntrain = "train.jsonl"\n'
        '[teacher]\nmodel = "openai/gpt-4o-mini"\n[student]\nmodel = "hf/tiny"\n'
    )
    result = run_still("config", "check", str(config))
    assert result.exit_code == 2, result.output
    assert "task_options.labels" in result.output


@pytest.mark.slow
def test_classification_end_to_end_with_tiny_models(write_pipeline, local_teacher, tiny_model_dir, run_still, stillhouse_home) -> None:
    path = write_pipeline(
        task="classification",
        task_options={"labels": ["spam", "ham"], "rationale": "drop", "ask_rationale": False},
        train=ROWS,
        test=ROWS,
        teacher=local_teacher,
        student={"model": str(tiny_model_dir)},
        train_options={"num_epochs": 1, "batch_size": 2},
        evaluate={"limit": 4, "max_new_tokens": 8, "roles": ["teacher", "baseline"], "timing": {"new_tokens": 2, "prompts": 1, "min_rounds": 1, "max_rounds": 1}},
    )
    result = run_still("run", str(path), "--stage", "evaluate", "--quiet")
    assert result.exit_code == 0, result.output
    run_dir = next((stillhouse_home / "runs").iterdir())
    results = json.loads((run_dir / "eval" / "results.json").read_text())
    baseline = {m["name"]: m for m in results["baseline"]["metrics"]}
    assert baseline["accuracy"]["n"] == 4 or baseline["accuracy"]["reason"]
    assert baseline["accuracy_ranked"]["n"] == 4 and baseline["accuracy_ranked"]["value"] is not None
    assert baseline["decode_ms_per_token"]["value"] is not None and baseline["decode_ms_per_token"]["n"] == 1
    teacher = {m["name"]: m for m in results["teacher"]["metrics"]}
    assert teacher["accuracy_ranked"]["value"] is None  # the teacher answers through litellm: free generation
    assert teacher["decode_ms_per_token"]["value"] is not None  # a local hf/ teacher is timed in-process
    rows = [json.loads(line) for line in (run_dir / "eval" / "baseline.jsonl").read_text().splitlines()]
    assert {r["ranked_answer"] for r in rows} <= {"spam", "ham"}
