"""The task plugin interface: built-ins arrive through the entry point, and a third-party task
type written only against kernel.interfaces registers and runs through the same host."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from stillhouse.kernel import hookimpl
from stillhouse.kernel.data import load_split
from stillhouse.kernel.interfaces import (
    Example,
    FieldSpec,
    Message,
    Metric,
    Parsed,
    TaskConfig,
    TaskType,
    TrainPair,
    Verdict,
)
from stillhouse.plugins.tasks import BUILTIN_TASKS


class SentimentConfig(TaskConfig):
    positive_words: list[str] = ["positive", "good", "great"]


class SentimentTask(TaskType):
    """A task a third party might write: movie-review sentiment, from kernel interfaces only."""

    name = "test_polarity"  # not "sentiment": the example plugin package may be installed
    description = "Review -> positive / negative."
    Config = SentimentConfig
    primary_metric = "accuracy"
    fields = (
        FieldSpec("review", aliases=("sentence", "text")),
        FieldSpec("label", aliases=("sentiment",), required=False, reference=True),
    )

    def teacher_messages(self, example: Example, few_shot: Sequence[Example] = ()) -> list[Message]:
        return [
            {"role": "system", "content": "Is the review positive or negative? Answer with one word."},
            {"role": "user", "content": example.inputs["review"]},
        ]

    def student_messages(self, example: Example) -> list[Message]:
        return self.teacher_messages(example)

    def parse(self, text: str) -> Parsed:
        word = text.strip().lower().rstrip(".")
        if word in self.config.positive_words:
            return Parsed(answer="positive", text=text)
        if word in ("negative", "bad"):
            return Parsed(answer="negative", text=text)
        return Parsed(error="unparseable", text=text)

    def verify(self, example: Example, parsed: Parsed) -> Verdict:
        if not parsed.ok:
            return Verdict(False, parsed.error or "unparseable")
        if example.reference is not None and parsed.answer != example.reference:
            return Verdict(False, "label_mismatch")
        return Verdict(True)

    def student_targets(self, example: Example, parsed: Parsed) -> list[TrainPair]:
        return [TrainPair(example.id, self.student_messages(example), str(parsed.answer))]

    def score(self, examples: Sequence[Example], predictions: Sequence[Parsed]) -> list[Metric]:
        scored = [(e, p) for e, p in zip(examples, predictions, strict=True) if e.reference is not None]
        correct = sum(p.answer == e.reference for e, p in scored)
        return [Metric("accuracy", correct / len(scored) if scored else None, len(scored))]


class SentimentPlugin:
    @hookimpl
    def register_tasks(self, register):  # type: ignore[no-untyped-def]
        register(SentimentTask)


class ClashingPlugin:
    """Tries to take the name of a built-in task."""

    @hookimpl
    def register_tasks(self, register):  # type: ignore[no-untyped-def]
        class FakeNLI(SentimentTask):
            name = "nli"

        register(FakeNLI)


def test_builtin_tasks_register_through_the_entry_point(make_host) -> None:  # type: ignore[no-untyped-def]
    host = make_host()
    assert {"nli", "qa", "math", "summarization", "conversation"} <= set(host.names("task"))
    for cls in BUILTIN_TASKS:
        assert host.get("task", cls.name) is cls
        assert host.source_of("task", cls.name) == "tasks"
    assert not [f for f in host.failures if f.name == "tasks"]


def test_third_party_task_registers_and_runs(make_host, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    host = make_host(SentimentPlugin(), ClashingPlugin())
    assert "test_polarity" in host.names("task") and "nli" in host.names("task")
    # The clash is refused by name and the built-in keeps its place.
    assert host.get("task", "nli") is next(c for c in BUILTIN_TASKS if c.name == "nli")
    assert any(f.stage == "duplicate" and "'nli'" in f.error for f in host.failures)

    cls = host.get("task", "test_polarity")
    assert cls is SentimentTask and host.source_of("task", "test_polarity") == "SentimentPlugin"
    task = cls(cls.Config.model_validate({"positive_words": ["positive", "thumbs up"], "few_shot": 0}))
    data = tmp_path / "reviews.csv"
    data.write_text("sentence,sentiment\nA joy from start to end.,positive\nTwo dull hours.,negative\nMeh,\n")
    loaded = load_split(task, data, "train")
    assert [e.reference for e in loaded.examples] == ["positive", "negative", None]

    outputs = ["Thumbs up.", "negative", "no opinion"]
    parsed = [task.parse(o) for o in outputs]
    assert [task.verify(e, p).reason for e, p in zip(loaded.examples, parsed, strict=True)] == [
        "ok",
        "ok",
        "unparseable",
    ]
    winner, confidence = task.aggregate([task.parse("positive"), task.parse("Thumbs up"), task.parse("bad")])
    assert (winner.answer, round(confidence, 3)) == ("positive", 0.667)
    assert task.student_targets(loaded.examples[0], parsed[0])[0].target == "positive"
    [accuracy] = task.score(loaded.examples, parsed)
    assert (accuracy.value, accuracy.n) == (1.0, 2)
