"""Natural language inference: does a premise entail, contradict or say nothing about a hypothesis.

Reads SNLI/MultiNLI layouts (``premise``/``hypothesis``/``label``, the original SNLI
``sentence1``/``sentence2``/``gold_label``, Hugging Face integer labels 0/1/2) and e-SNLI
explanations, which become the rationale of few-shot demos.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, ClassVar

from pydantic import Field, ValidationInfo, field_validator
from typing_extensions import TypeVar

from stillhouse.kernel.interfaces import Example, FieldSpec, Metric, Parsed, TaskConfig, Verdict
from stillhouse.plugins.tasks import metrics
from stillhouse.plugins.tasks.common import PromptedTask, data_error, with_reference
from stillhouse.plugins.tasks.text import clean_span, split_answer

DEFAULT_LABELS = ["entailment", "neutral", "contradiction"]

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")

# Word stems that name a label in prose ("entails", "is entailed", "contradicts", "contradictory").
STEMS = {"entailment": "entail", "contradiction": "contradict", "neutral": "neutral"}

# Whole-answer synonyms: only used when they are the entire answer ("Answer: Yes"); inside prose
# "yes"/"no" mean too many things to count as a label. yes / it is not possible to tell / no is the
# option wording of the FLAN instruction templates for SNLI and MNLI, which instruction-tuned
# models fall back to.
DEFAULT_SYNONYMS = {
    "yes": "entailment",
    "true": "entailment",
    "entails": "entailment",
    "no": "contradiction",
    "false": "contradiction",
    "maybe": "neutral",
    "unknown": "neutral",
    "undetermined": "neutral",
    "cannot be determined": "neutral",
    "can't be determined": "neutral",
    "it is not possible to tell": "neutral",
    "not possible to tell": "neutral",
    "neither": "neutral",
}

# A label mention right after a negation ("not an entailment", "does not entail", "no contradiction")
# is not the answer. Only filler words may stand between, so "not entailment but neutral" still
# counts "neutral".
_FILLER = r"(?:a|an|the|really|necessarily|strictly|clearly|exactly|quite|just|simply|definitely|actually|any|be|been|a\s+case\s+of)"
_NEGATION = re.compile(
    r"\b(?:not|no|never|isn't|isnt|doesn't|doesnt|cannot|can't|rather\s+than|instead\s+of)\W+(?:"
    + _FILLER
    + r"\W+){0,2}$",
    re.I,
)


class NLIConfig(TaskConfig):
    labels: list[str] = Field(
        default_factory=lambda: list(DEFAULT_LABELS),
        min_length=2,
        description="The label set, in the order integer labels index it.",
    )
    synonyms: dict[str, str] = Field(
        default_factory=lambda: dict(DEFAULT_SYNONYMS),
        validate_default=True,  # the defaults are pruned to the configured labels
        description="Whole answers that stand for a label (e.g. yes -> entailment). Matched case-insensitively.",
    )
    rationale: str = Field(
        "drop", pattern="^(keep|drop|multitask)$", description=TaskConfig.model_fields["rationale"].description
    )

    @field_validator("labels")
    @classmethod
    def _lower_labels(cls, labels: list[str]) -> list[str]:
        lowered = [label.strip().lower() for label in labels]
        if len(set(lowered)) != len(lowered) or not all(lowered):
            raise ValueError("labels must be distinct and non-empty")
        return lowered

    @field_validator("synonyms")
    @classmethod
    def _synonyms_name_labels(cls, synonyms: dict[str, str], info: ValidationInfo) -> dict[str, str]:
        # A default synonym whose label this label set lacks is dropped; a user's must fit.
        labels = info.data.get("labels") or DEFAULT_LABELS
        kept = {}
        for word, label in synonyms.items():
            if label.strip().lower() in labels:
                kept[word.strip().lower()] = label.strip().lower()
            elif DEFAULT_SYNONYMS.get(word) != label:
                raise ValueError(f"synonym '{word}' -> '{label}': '{label}' is not one of the labels {labels}")
        return kept


NLIConfigT = TypeVar("NLIConfigT", bound=NLIConfig, default=NLIConfig)


class NLITask(PromptedTask[NLIConfigT]):
    name = "nli"
    description = "Natural language inference (premise, hypothesis -> entailment / neutral / contradiction)."
    # Typed as wide as the base's so that subclasses (classification) can set their own.
    Config: ClassVar[type[NLIConfig]] = NLIConfig
    primary_metric = "accuracy"
    fields: ClassVar[tuple[FieldSpec, ...]] = (
        FieldSpec("premise", aliases=("sentence1", "sentence_1", "text_a", "context")),
        FieldSpec("hypothesis", aliases=("sentence2", "sentence_2", "text_b", "claim")),
        FieldSpec("label", aliases=("gold_label", "labels", "answer"), required=False, kind="any", reference=True),
        FieldSpec("explanation", aliases=("explanation_1", "rationale"), required=False),
    )
    instruction = (
        "You are given a premise and a hypothesis. Decide whether the premise entails the hypothesis "
        "(it must be true), contradicts it (it cannot be true), or is neutral (it may or may not be true)."
    )
    answer_noun = "label"
    id_fields: ClassVar[tuple[str, ...]] = ("pairID", "pair_id", "idx")

    def __init__(self, config: NLIConfigT | None = None) -> None:
        super().__init__(config)
        labels = self.config.labels
        self.answer_format = "The label is one of: " + ", ".join(labels) + "."
        # Longest first so "not entailment" style custom labels win over their substrings.
        alternatives = sorted({STEMS.get(label, label) for label in labels}, key=len, reverse=True)
        self._label_word = re.compile(r"\b(" + "|".join(re.escape(a) for a in alternatives) + r")\w*", re.I)
        self._stem_to_label = {STEMS.get(label, label): label for label in labels}

    # -- data ---------------------------------------------------------------------------------

    def finish_example(self, example: Example, source: str) -> Example:
        if example.reference is not None:
            example.reference = self._gold_label(example.reference, source)
        return example

    def _gold_label(self, value: Any, source: str) -> str:
        labels = self.config.labels
        no_agreement = (
            "SNLI marks rows without annotator agreement with -1 or '-': drop them or set on_bad_rows = \"skip\""
        )
        if isinstance(value, bool):
            raise data_error(f"label should be one of {labels}, got {value!r}", source, "label")
        if isinstance(value, int) or (isinstance(value, str) and value.strip().lstrip("-").isdigit()):
            index = int(value)
            if 0 <= index < len(labels):  # Hugging Face snli/mnli: 0 entailment, 1 neutral, 2 contradiction
                return labels[index]
            raise data_error(f"label index {index} is outside 0..{len(labels) - 1}", source, "label", no_agreement)
        if isinstance(value, str):
            label = self.label_in(value.strip(), whole_only=True)
            if label is not None:
                return label
            hint = (
                no_agreement if value.strip() == "-" else f"labels can be set with task_options.labels (now {labels})"
            )
            raise data_error(f"label should be one of {labels}, got '{value}'", source, "label", hint)
        raise data_error(f"label should be a string or an integer, got {type(value).__name__}", source, "label")

    def render_input(self, example: Example) -> str:
        return f"Premise: {example.inputs['premise']}\nHypothesis: {example.inputs['hypothesis']}"

    # -- parsing ------------------------------------------------------------------------------

    def label_in(self, text: str, *, whole_only: bool = False) -> str | None:
        """The label a piece of text names: the whole text as a label or synonym, else (unless
        ``whole_only``) the label words in it that are not negated ("not entailment")."""
        whole = clean_span(text).lower().strip(" .!")
        if whole in self.config.labels:
            return whole
        if whole in self.config.synonyms:
            return self.config.synonyms[whole]
        stem_match = self._label_word.fullmatch(whole)
        if stem_match:
            return self._stem_to_label[stem_match.group(1).lower()]
        if whole_only:
            return None
        found = self._mentions(text)
        return found[0] if len(set(found)) == 1 else None

    def _mentions(self, text: str) -> list[str]:
        """Labels named in text, in order, skipping negated mentions."""
        found = []
        for match in self._label_word.finditer(text):
            if _NEGATION.search(text[: match.start()]):
                continue
            found.append(self._stem_to_label[match.group(1).lower()])
        return found

    def parse(self, text: str) -> Parsed:
        if not text or not text.strip():
            return Parsed(error="empty", text=text or "")
        split = split_answer(text, ("answer", "label", "prediction", "relation"))
        segment = split.answer
        if split.marked:
            # After an explicit marker the first non-negated label is the answer ("Answer:
            # Contradiction. It cannot be entailment because ...").
            label = self.label_in(segment.splitlines()[0] if segment else "") or next(
                iter(self._mentions(segment)), None
            )
            if label is None:
                return Parsed(rationale=split.rationale, error="unparseable", text=text)
            return Parsed(answer=label, rationale=split.rationale, text=text)
        # No marker: a bare label, else the conclusion, which reasoning puts in its last sentence.
        # Label words earlier in the text are not answers ("to decide whether the premise entails
        # the hypothesis, ..."), and a text cut off mid-reasoning has no conclusion at all.
        label = self.label_in(segment, whole_only=True)
        if label is not None:
            return Parsed(answer=label, rationale=split.rationale, text=text)
        sentences = [s.strip() for s in _SENTENCE_END.split(segment) if s.strip()]
        if not sentences:
            return Parsed(error="unparseable", text=text)
        conclusion = self._mentions(sentences[-1])
        if len(set(conclusion)) > 1:
            return Parsed(error="ambiguous_label", text=text)
        if not conclusion:
            return Parsed(error="unparseable", text=text)
        rationale = segment[: segment.rfind(sentences[-1])].strip() or split.rationale
        return Parsed(answer=conclusion[0], rationale=rationale, text=text)

    def label_choices(self) -> list[str]:
        return list(self.config.labels)

    # -- checking and scoring -----------------------------------------------------------------

    def verify(self, example: Example, parsed: Parsed) -> Verdict:
        rejected = self.precheck(parsed)
        if rejected is not None:
            return rejected
        if example.reference is not None and parsed.answer != example.reference:
            return Verdict(False, "label_mismatch", detail=f"teacher said {parsed.answer}, reference is {example.reference}")
        return Verdict(True, "ok")

    def score(self, examples: Sequence[Example], predictions: Sequence[Parsed]) -> list[Metric]:
        pairs = with_reference(examples, predictions)
        if not pairs:
            return metrics.unmeasured(["accuracy", "macro_f1"])
        gold = [ex.reference for ex, _ in pairs]
        predicted = [p.answer if p.ok else None for _, p in pairs]
        n = len(pairs)
        return [
            metrics.metric("accuracy", metrics.accuracy(predicted, gold), n),
            metrics.metric("macro_f1", metrics.macro_f1(predicted, gold), n),
        ]
