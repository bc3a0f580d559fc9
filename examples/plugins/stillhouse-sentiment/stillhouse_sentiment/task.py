"""The ``sentiment`` task type: is a review positive or negative?

The teacher is asked to reason briefly and end with ``Answer: positive`` or ``Answer: negative``.
Its answer is accepted when exactly one polarity can be read from it (negated mentions such as "not
positive" are not read as that label) and it agrees with the gold label where the row has one.
The student learns the bare label (or, with ``rationale = "keep"``, the reasoning and the label).
Scored by accuracy and macro-F1 over the two classes.

It builds on Stillhouse's public helpers: ``split_answer`` finds the answer after the last
``Answer:`` marker in messy model output, and the metrics module computes accuracy and macro-F1.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from pydantic import Field, field_validator

from stillhouse.kernel.errors import DataError, Location
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

LABELS = ("positive", "negative")

# Gold labels as public sentiment datasets write them (SST-2 and IMDB on the hub use 1/0). Other
# schemes (Yelp polarity's 2/1, star ratings) are refused rather than guessed: map them beforehand.
GOLD_ALIASES: dict[str, str] = {
    "positive": "positive",
    "pos": "positive",
    "1": "positive",
    "negative": "negative",
    "neg": "negative",
    "0": "negative",
}

# A label word preceded (within three words) by a negation is not a mention of that label.
_NEGATED = re.compile(r"(?:\b(?:not|never|hardly|neither|nor)|n't)\W+(?:\w+\W+){0,2}$", re.I)


class SentimentConfig(TaskConfig):
    """``[task_options]`` of ``task = "sentiment"``."""

    synonyms: dict[str, str] = Field(
        default_factory=lambda: {"favourable": "positive", "favorable": "positive", "unfavourable": "negative", "unfavorable": "negative"},
        description="Whole answers (or words after 'Answer:') that stand for a label, matched case-insensitively.",
    )
    rationale: str = Field(
        "drop",
        pattern="^(keep|drop)$",
        description="Student target: the teacher's reasoning and the label (keep), or the label alone (drop).",
    )

    @field_validator("synonyms")
    @classmethod
    def _labels_exist(cls, synonyms: dict[str, str]) -> dict[str, str]:
        bad = {word: label for word, label in synonyms.items() if label.lower() not in LABELS}
        if bad:
            raise ValueError(f"synonyms must map to positive or negative, got {bad}")
        return {word.lower(): label.lower() for word, label in synonyms.items()}


class SentimentTask(TaskType):
    name = "sentiment"
    description = "Sentiment of a review or short text: positive or negative."
    Config = SentimentConfig
    primary_metric = "accuracy"
    fields = (
        FieldSpec("text", aliases=("review", "sentence", "content")),
        FieldSpec("label", aliases=("sentiment", "polarity"), required=False, kind="any", reference=True),
    )

    config: SentimentConfig

    def __init__(self, config: SentimentConfig | None = None) -> None:
        super().__init__(config)
        words = sorted({*LABELS, *self.config.synonyms}, key=len, reverse=True)
        self._label_word = re.compile(r"\b(" + "|".join(re.escape(w) for w in words) + r")\b", re.I)

    # -- data ---------------------------------------------------------------------------------

    def example_from_row(
        self, row: dict[str, Any], *, split: str, index: int, source: str, mapping: dict[str, str] | None = None
    ) -> Example:
        example = super().example_from_row(row, split=split, index=index, source=source, mapping=mapping)
        if example.reference is not None:
            example.reference = self._gold(example.reference, source)
        return example

    def _gold(self, value: Any, source: str) -> str:
        key = str(int(value)) if isinstance(value, (bool, int)) else str(value).strip().lower()
        if key in GOLD_ALIASES:
            return GOLD_ALIASES[key]
        file, _, line = source.rpartition(":")
        raise DataError(
            f"label should be positive or negative (or 1/0, pos/neg), got {value!r}",
            where=Location(file or source, int(line) if line.isdigit() else None, "label"),
            hint='remove the row, or set data.on_bad_rows = "skip"',
        )

    # -- prompts ------------------------------------------------------------------------------

    def _instructions(self) -> str:
        base = self.config.system_prompt or (
            "Decide whether the text expresses a positive or a negative opinion of what it describes."
        )
        if self.config.ask_rationale:
            return base + ' Explain briefly after "Reasoning:", then give "Answer: positive" or "Answer: negative" on the last line.'
        return base + ' Reply with "Answer: positive" or "Answer: negative".'

    def teacher_messages(self, example: Example, few_shot: Sequence[Example] = ()) -> list[Message]:
        messages: list[Message] = [{"role": "system", "content": self._instructions()}]
        for shot in few_shot:
            messages.append({"role": "user", "content": f"Text: {shot.inputs['text']}"})
            messages.append({"role": "assistant", "content": f"Answer: {shot.reference}"})
        messages.append({"role": "user", "content": f"Text: {example.inputs['text']}"})
        return messages

    def student_messages(self, example: Example) -> list[Message]:
        return [
            {"role": "system", "content": "Is the opinion in the text positive or negative?"},
            {"role": "user", "content": f"Text: {example.inputs['text']}"},
        ]

    # -- parsing and checking -----------------------------------------------------------------

    def _labels_in(self, text: str) -> list[str]:
        """Labels named in ``text`` in order, leaving out negated mentions ("not positive")."""
        found = []
        for match in self._label_word.finditer(text):
            if _NEGATED.search(text[: match.start()]):
                continue
            word = match.group(1).lower()
            found.append(self.config.synonyms.get(word, word))
        return found

    def parse(self, text: str) -> Parsed:
        from stillhouse.plugins.tasks.text import split_answer

        if not text or not text.strip():
            return Parsed(error="empty", text=text or "")
        split = split_answer(text, ("answer", "label", "sentiment"))
        if split.marked:  # after the marker, the first label named is the answer
            labels = self._labels_in(split.answer.splitlines()[0] if split.answer else "")
            if not labels:
                return Parsed(rationale=split.rationale, error="unparseable", text=text)
            return Parsed(answer=labels[0], rationale=split.rationale, text=text)
        labels = self._labels_in(split.answer)
        if not labels:
            return Parsed(error="unparseable", text=text)
        if len(set(labels)) > 1:
            # without a marker, reasoning tends to weigh both sides and conclude last
            lines = [line for line in split.answer.splitlines() if line.strip()]
            last = set(self._labels_in(lines[-1])) if lines else set()
            if len(last) != 1:
                return Parsed(error="ambiguous", text=text)
            return Parsed(answer=last.pop(), rationale="\n".join(lines[:-1]).strip() or None, text=text)
        return Parsed(answer=labels[0], text=text)

    def answer_key(self, answer: Any) -> Any:
        return str(answer).lower()

    def verify(self, example: Example, parsed: Parsed) -> Verdict:
        if not parsed.ok:
            return Verdict(False, parsed.error or "unparseable")
        if self.config.rationale == "keep" and self.config.ask_rationale and not parsed.rationale:
            return Verdict(False, "missing_rationale")  # it would be trained on
        if example.reference is not None and parsed.answer != example.reference:
            return Verdict(False, "label_mismatch")
        return Verdict(True)

    def student_targets(self, example: Example, parsed: Parsed) -> list[TrainPair]:
        target = str(parsed.answer)
        if self.config.rationale == "keep" and parsed.rationale:
            target = f"Reasoning: {parsed.rationale}\nAnswer: {parsed.answer}"
        return [TrainPair(example.id, self.student_messages(example), target)]

    def score(self, examples: Sequence[Example], predictions: Sequence[Parsed]) -> list[Metric]:
        from stillhouse.plugins.tasks.metrics import accuracy, macro_f1

        pairs = [(e, p) for e, p in zip(examples, predictions, strict=True) if e.reference is not None]
        if not pairs:
            reason = "no example has a gold label"
            return [Metric("accuracy", None, reason=reason), Metric("macro_f1", None, reason=reason)]
        gold = [e.reference for e, _ in pairs]
        predicted = [p.answer if p.ok else None for _, p in pairs]  # unparseable counts as wrong
        return [
            Metric("accuracy", accuracy(predicted, gold), len(pairs)),
            Metric("macro_f1", macro_f1(predicted, gold), len(pairs)),
        ]
