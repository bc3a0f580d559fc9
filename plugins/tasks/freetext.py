"""Shared by the tasks whose answer is free text (summarization, conversation): parsing a text
answer out of chatty output, length and copy checks, and the generation metrics."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar

from pydantic import Field
from typing_extensions import TypeVar

from stillhouse.kernel.interfaces import Example, Metric, Parsed, TaskConfig, Verdict
from stillhouse.plugins.tasks import metrics
from stillhouse.plugins.tasks.common import PromptedTask, as_list, prediction_text, with_reference
from stillhouse.plugins.tasks.text import (
    longest_common_run,
    repeated_ngram_share,
    split_answer,
    strip_markdown,
    unquote,
    words,
)

_SENTENCE_ENDINGS = (".", "!", "?", "…", '"', "”", "'", ")")


class FreeTextConfig(TaskConfig):
    min_words: int = Field(1, ge=1, description="Shorter answers are rejected (too_short).")
    max_words: int = Field(120, ge=1, description="Longer answers are rejected (too_long).")
    max_copied_words: int | None = Field(
        20, ge=2, description="Reject answers that repeat this many consecutive words of the input (copied_context)."
    )
    max_repetition: float | None = Field(
        0.3,
        ge=0,
        le=1,
        description="Reject answers whose share of repeated word trigrams is above this (repetitive): the "
        "loops small teachers fall into. Gold DialogSum summaries and Topical-Chat turns stay under 0.2.",
    )
    require_complete: bool = Field(
        False,
        description="Reject answers that do not end like a sentence (.!?), e.g. cut off at max_tokens (truncated).",
    )
    trim_incomplete: bool = Field(
        False,
        description="Cut an answer that stops mid-sentence (max_tokens reached) back to its last complete "
        "sentence, when it has one; otherwise require_complete decides.",
    )
    ask_rationale: bool = Field(False, description="Ask the teacher to reason before answering.")
    rationale: str = Field(
        "drop", pattern="^(keep|drop|multitask)$", description=TaskConfig.model_fields["rationale"].description
    )


def trim_to_sentence(text: str) -> str:
    """``"A met B. They talked about"`` -> ``"A met B."``: drop a trailing unfinished sentence, but
    keep text that has no complete sentence at all (the verifier decides about that)."""
    stripped = text.rstrip()
    if not stripped or stripped.endswith(_SENTENCE_ENDINGS):
        return stripped
    cut = max(stripped.rfind(end + " ") for end in (".", "!", "?"))
    return stripped[: cut + 1] if cut > 0 else stripped


FreeTextConfigT = TypeVar("FreeTextConfigT", bound=FreeTextConfig, default=FreeTextConfig)


class FreeTextTask(PromptedTask[FreeTextConfigT]):
    """A task whose answer is a piece of text, scored by overlap with reference texts."""

    free_text: ClassVar[bool] = True
    """Answers are free text: several teachers' answers combine by best-of, not by a vote
    (kernel.teacher_ensemble)."""

    answer_markers: ClassVar[tuple[str, ...]] = ("answer",)
    """Labels that may introduce the answer ("Summary:", "Reply:"); prose like "the answer is" is
    not a marker here, since it can be part of the text itself."""

    interjections: ClassVar[bool] = False
    """Whether a bare "Certainly." line before the answer is chatter (true for summaries; in a
    reply it may be the reply)."""

    @abstractmethod
    def answer_lines(self, segment: str) -> list[str]:
        """The lines of the answer segment that make up the answer, cleaned."""

    def parse(self, text: str) -> Parsed:
        if not text or not text.strip():
            return Parsed(error="empty", text=text or "")
        split = split_answer(text, self.answer_markers, prose=False, preamble=True, interjections=self.interjections)
        answer = unquote(strip_markdown(" ".join(self.answer_lines(split.answer))))
        if self.config.trim_incomplete:
            answer = trim_to_sentence(answer)
        if not answer:
            return Parsed(rationale=split.rationale, error="empty", text=text)
        return Parsed(answer=answer, rationale=split.rationale, text=text)

    def answer_key(self, answer: Any) -> Any:
        return " ".join(words(str(answer)))

    def check_text(self, parsed: Parsed, source: list[str]) -> Verdict | None:
        """Shared rejections of a text answer against the words of its input: none, too short,
        too long, or a long verbatim copy."""
        rejected = self.precheck(parsed)
        if rejected is not None:
            return rejected
        answer = words(str(parsed.answer))
        if len(answer) < self.config.min_words:
            return Verdict(False, "too_short", detail=f"{len(answer)} words < min_words {self.config.min_words}")
        if len(answer) > self.config.max_words:
            return Verdict(False, "too_long", detail=f"{len(answer)} words > max_words {self.config.max_words}")
        limit = self.config.max_copied_words
        copied = longest_common_run(answer, source) if limit is not None else 0
        if limit is not None and copied >= limit:
            return Verdict(False, "copied_context", detail=f"{copied} words copied in a row >= max_copied_words {limit}")
        limit_repeats = self.config.max_repetition
        share = repeated_ngram_share(answer) if limit_repeats is not None else 0.0
        if limit_repeats is not None and share > limit_repeats:
            return Verdict(False, "repetitive", detail=f"{share:.0%} repeated n-grams > max_repetition {limit_repeats:.0%}")
        if self.config.require_complete and not str(parsed.answer).rstrip().endswith(_SENTENCE_ENDINGS):
            return Verdict(False, "truncated")
        return None

    def overlap_metrics(
        self, examples: Sequence[Example], predictions: Sequence[Parsed], names: list[str]
    ) -> list[Metric]:
        """ROUGE / BLEU / chrF (whichever ``names`` lists) against the references."""
        pairs = with_reference(examples, predictions)
        if not pairs:
            return metrics.unmeasured(names)
        hyps = [prediction_text(p) for _, p in pairs]
        refs = [as_list(ex.reference) for ex, _ in pairs]
        values: dict[str, float] = {}
        if {"rouge1", "rouge2", "rouge_l"} & set(names):
            values.update(metrics.rouge(hyps, refs))
        if {"bleu", "chrf"} & set(names):
            values.update(metrics.bleu_chrf(hyps, refs))
        return [metrics.metric(name, values[name], len(pairs)) for name in names]
