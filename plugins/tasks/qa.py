"""Extractive question answering: answer a question with a short span of a context passage.

Reads SQuAD layouts (``context``/``question``/``answers.text[]``, nested ``answers`` objects, or a
plain ``answer`` string). Scored with the official SQuAD v1.1 exact match and F1.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from typing import Any

from pydantic import Field

from stillhouse.kernel.interfaces import Example, FieldSpec, Metric, Parsed, TaskConfig, Verdict
from stillhouse.plugins.tasks import metrics
from stillhouse.plugins.tasks.common import PromptedTask, data_error, with_reference
from stillhouse.plugins.tasks.text import clean_span, first_line, quoted_spans, split_answer, words


class QAConfig(TaskConfig):
    f1_threshold: float = Field(
        0.5, ge=0, le=1, description="Least SQuAD F1 against the best gold answer to accept a teacher answer."
    )
    max_answer_words: int = Field(30, gt=0, description="Longer answers are rejected as too_long (answers are spans).")
    require_span: bool = Field(
        True, description="Reject answers that do not occur in the context (after SQuAD normalisation)."
    )
    rationale: str = Field(
        "drop", pattern="^(keep|drop|multitask)$", description=TaskConfig.model_fields["rationale"].description
    )


class QATask(PromptedTask[QAConfig]):
    name = "qa"
    description = "Extractive question answering (context, question -> answer span), SQuAD EM/F1."
    Config = QAConfig
    primary_metric = "f1"
    fields = (
        FieldSpec("context", aliases=("passage", "paragraph", "document")),
        FieldSpec("question", aliases=("query", "q")),
        FieldSpec(
            "answers",
            aliases=("answers.text", "answer", "answer_text", "gold_answers"),
            required=False,
            kind="any",
            reference=True,
        ),
    )
    instruction = "Answer the question using a short span copied from the context."
    answer_format = "The answer is a few words from the context, not a sentence."

    config: QAConfig

    def finish_example(self, example: Example, source: str) -> Example:
        if example.reference is not None:
            answers = _answer_texts(example.reference)
            if answers is None:
                kind = type(example.reference).__name__
                raise data_error(
                    f"answers should be a string, a list of strings or {{'text': [...]}}, got {kind}", source, "answers"
                )
            # An empty list is SQuAD 2.0's "no answer": nothing to check a teacher answer against.
            example.reference = answers or None
        return example

    def render_input(self, example: Example) -> str:
        return f"Context: {example.inputs['context']}\nQuestion: {example.inputs['question']}"

    def demo_answer(self, example: Example) -> str | None:
        if not example.reference:
            return None
        return Counter(example.reference).most_common(1)[0][0]  # the answer most annotators gave

    # -- parsing ------------------------------------------------------------------------------

    def parse(self, text: str) -> Parsed:
        if not text or not text.strip():
            return Parsed(error="empty", text=text or "")
        split = split_answer(text, ("answer", "short answer", "span"))
        rationale = split.rationale
        if split.marked:
            candidate = first_line(split.answer)
        else:
            lines = [line.strip() for line in split.answer.splitlines() if line.strip()]
            candidate = lines[-1] if lines else ""
            if len(lines) > 1:
                rationale = "\n".join(lines[:-1])
        quotes = quoted_spans(candidate)
        sentence = (
            candidate.rstrip().endswith(".") and len(words(candidate)) > len(words(quotes[0])) + 2 if quotes else False
        )
        glossed = bool(quotes) and f'("{quotes[0]}")' in candidate  # 'a pharynx ("throat")' glosses a word
        if len(quotes) == 1 and sentence and not glossed:
            # 'The passage says it began in "October 1973".' -> the quoted span. A span without a
            # full stop keeps its quotes' words: 'declared Japan a "nonfriendly" country' is an answer.
            candidate = quotes[0]
        answer = clean_span(candidate)
        if not answer:
            return Parsed(rationale=rationale, error="empty", text=text)
        return Parsed(answer=answer, rationale=rationale, text=text)

    def answer_key(self, answer: Any) -> Any:
        return metrics.squad_normalize(str(answer))

    # -- checking and scoring -----------------------------------------------------------------

    def verify(self, example: Example, parsed: Parsed) -> Verdict:
        rejected = self.precheck(parsed)
        if rejected is not None:
            return rejected
        answer = str(parsed.answer)
        if len(words(answer)) > self.config.max_answer_words:
            return Verdict(False, "too_long", detail=f"{len(words(answer))} words > max_answer_words {self.config.max_answer_words}")
        if self.config.require_span:
            span = metrics.squad_normalize(answer)
            if not span or span not in metrics.squad_normalize(str(example.inputs["context"])):
                return Verdict(False, "not_in_context")
        if example.reference is not None:
            f1 = metrics.best_over_golds(metrics.squad_f1, answer, example.reference)
            if f1 < self.config.f1_threshold:
                return Verdict(False, "low_f1", detail=f"F1 {f1:.2f} < f1_threshold {self.config.f1_threshold:g}")
        return Verdict(True, "ok")

    def score(self, examples: Sequence[Example], predictions: Sequence[Parsed]) -> list[Metric]:
        pairs = with_reference(examples, predictions)
        if not pairs:
            return metrics.unmeasured(["exact_match", "f1"])
        em = f1 = 0.0
        for example, parsed in pairs:
            prediction = str(parsed.answer) if parsed.ok else ""
            em += metrics.best_over_golds(metrics.squad_exact, prediction, example.reference)
            f1 += metrics.best_over_golds(metrics.squad_f1, prediction, example.reference)
        n = len(pairs)
        return [metrics.metric("exact_match", em / n, n), metrics.metric("f1", f1 / n, n)]


def _answer_texts(value: Any) -> list[str] | None:
    """Gold answers from the layouts datasets use; None when the value is none of them."""
    if isinstance(value, str):
        if value.lstrip().startswith("["):  # a list stored as JSON text, as CSV files do
            try:
                decoded = json.loads(value)
            except json.JSONDecodeError:
                decoded = None
            if isinstance(decoded, list):
                return _answer_texts(decoded)
        return [value] if value.strip() else []
    if isinstance(value, dict):
        return _answer_texts(value.get("text"))
    if isinstance(value, list | tuple):
        texts: list[str] = []
        for item in value:
            if isinstance(item, dict):
                item = item.get("text")
            if not isinstance(item, str):
                return None
            if item.strip():
                texts.append(item)
        return texts
    return None
