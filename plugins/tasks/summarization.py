"""Summarization of a document or a dialogue (DialogSum, CNN/DailyMail, XSum layouts).

Several gold summaries per row (DialogSum test's ``summary1..3``, a ``summaries`` or ``references``
list) are all kept: ROUGE takes each sample's best reference, BLEU/chrF use them all.

Teacher summaries are checked for length, for copying long stretches of the source verbatim and,
when asked, for ROUGE-L against the gold summary. Scored with ROUGE-1/2/L (rouge-score) and
BLEU/chrF (sacrebleu).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from pydantic import Field

from stillhouse.kernel.interfaces import Example, FieldSpec, Metric, Parsed, Verdict
from stillhouse.plugins.tasks import metrics
from stillhouse.plugins.tasks.common import as_list, data_error
from stillhouse.plugins.tasks.freetext import FreeTextConfig, FreeTextTask
from stillhouse.plugins.tasks.text import words

_BULLET = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s+")
_TURN_LABEL = re.compile(r"^([^:\n]{1,30}):\s", re.M)
_HEADING = re.compile(r"^\s*#+\s*\w[\w ]*:?\s*$")


class SummarizationConfig(FreeTextConfig):
    min_words: int = Field(3, ge=1, description="Shorter summaries are rejected as too_short.")
    max_words: int = Field(120, ge=1, description="Longer summaries are rejected as too_long.")
    trim_incomplete: bool = Field(True, description=FreeTextConfig.model_fields["trim_incomplete"].description)
    max_compression: float = Field(
        0.9, gt=0, description="Reject summaries longer than this share of the source's words (too_long)."
    )
    require_complete: bool = Field(
        True,
        description="Reject summaries that do not end like a sentence (.!?), e.g. cut off at max_tokens (truncated).",
    )
    rouge_threshold: float | None = Field(
        None, ge=0, le=1, description="If set, least ROUGE-L F against the gold summary."
    )


class SummarizationTask(FreeTextTask[SummarizationConfig]):
    name = "summarization"
    description = (
        "Summarize a document or dialogue; ROUGE-1/2/L (each sample scores its best reference, as DialogSum "
        "papers report), multi-reference BLEU, chrF."
    )
    Config = SummarizationConfig
    primary_metric = "rouge_l"
    fields = (
        FieldSpec("document", aliases=("dialogue", "article", "text", "source", "content", "transcript", "input")),
        FieldSpec(
            "summary",
            aliases=("highlights", "abstract", "summary_text", "summaries", "target", "reference"),
            required=False,
            kind="any",
            reference=True,
        ),
    )
    id_fields = ("fname", "doc_id", "document_id")
    instruction = "Summarize the text below in a few sentences, keeping the key facts and who did what."
    closing_instruction = "Write a short summary of the text above: who did what, in one or two sentences."
    answer_label = "Summary"
    answer_noun = "summary"
    answer_markers = ("summary", "tl;dr", "tldr")
    interjections = True

    config: SummarizationConfig

    def finish_example(self, example: Example, source: str) -> Example:
        ref = example.reference
        if ref is not None:
            if not (isinstance(ref, str) or (isinstance(ref, list | tuple) and all(isinstance(r, str) for r in ref))):
                raise data_error(
                    f"summary should be text or a list of texts, got {type(ref).__name__}", source, "summary"
                )
            example.reference = ref if isinstance(ref, str) else (list(ref) or None)
        return example

    def answer_format_for(self, example: Example | None) -> str:
        return f"Write at most {self.config.max_words} words, in your own words; do not copy the text."

    def render_input(self, example: Example) -> str:
        return f"Text:\n{example.inputs['document']}"

    def demo_answer(self, example: Example) -> str | None:
        refs = as_list(example.reference)
        return refs[0] if refs else None

    def answer_lines(self, segment: str) -> list[str]:
        # Bullet points and wrapped lines become one paragraph, which is how references are written.
        return [
            _BULLET.sub("", line).strip() for line in segment.splitlines() if line.strip() and not _HEADING.match(line)
        ]

    def verify(self, example: Example, parsed: Parsed) -> Verdict:
        source = words(str(example.inputs["document"]))
        rejected = self.check_text(parsed, source)
        if rejected is not None:
            return rejected
        length, limit = len(words(str(parsed.answer))), self.config.max_compression * len(source)
        if length > limit:
            detail = f"{length} words > max_compression {self.config.max_compression:g} × {len(source)} source words = {limit:.0f}"
            return Verdict(False, "too_long", detail=detail)
        if _speaker_turns(str(parsed.answer), str(example.inputs["document"])) >= 2:
            return Verdict(False, "not_a_summary")  # it re-enacts the dialogue instead of reporting it
        if self.config.rouge_threshold is not None and example.reference is not None:
            best = max(metrics.rouge_l(str(parsed.answer), ref) for ref in as_list(example.reference))
            if best < self.config.rouge_threshold:
                return Verdict(False, "low_rouge", detail=f"ROUGE-L {best:.2f} < rouge_threshold {self.config.rouge_threshold:g}")
        return Verdict(True, "ok")

    def score(self, examples: Sequence[Example], predictions: Sequence[Parsed]) -> list[Metric]:
        return self.overlap_metrics(examples, predictions, ["rouge1", "rouge2", "rouge_l", "bleu", "chrf"])


def _speaker_turns(summary: str, document: str) -> int:
    """How many times the summary opens a turn of one of the document's speakers ("#Person1#:")."""
    speakers = {m.group(1).strip() for m in _TURN_LABEL.finditer(document)}
    if len(speakers) < 2:  # not a dialogue
        return 0
    return sum(summary.count(f"{speaker}:") for speaker in speakers)
