"""Generic classification: a text -> one label of a set named in the config.

Content moderation, intent routing, ticket triage: the label set (and, optionally, a description
of each label for the prompt) comes from ``[task_options]``::

    task = "classification"
    [task_options]
    labels = ["spam", "ham"]
    descriptions = { spam = "unsolicited advertising or scams", ham = "an ordinary message" }

Answers are parsed, verified (``label_mismatch`` against a gold label) and scored (accuracy,
macro-F1) exactly as NLI's are — the label parser is NLI's, which reads labels, configured
synonyms and negations ("not spam") — and, being a closed label set, local models are also scored
by rank classification (``accuracy_ranked``, see ``plugins.evaluators.task_metrics``).
"""

from __future__ import annotations

from pydantic import Field, ValidationInfo, field_validator

from stillhouse.kernel.interfaces import Example, FieldSpec
from stillhouse.plugins.tasks.nli import NLIConfig, NLITask


class ClassificationConfig(NLIConfig):
    labels: list[str] = Field(..., min_length=2, description="The label set (at least two, distinct), e.g. [\"spam\", \"ham\"].")
    descriptions: dict[str, str] = Field(
        default_factory=dict, description="What each label means, shown to the teacher and the student in the prompt."
    )
    synonyms: dict[str, str] = Field(
        default_factory=dict,
        validate_default=True,
        description="Whole answers that stand for a label (e.g. junk -> spam). Matched case-insensitively.",
    )

    @field_validator("descriptions")
    @classmethod
    def _descriptions_name_labels(cls, descriptions: dict[str, str], info: ValidationInfo) -> dict[str, str]:
        labels = info.data.get("labels") or []
        lowered = {key.strip().lower(): text for key, text in descriptions.items()}
        unknown = [key for key in lowered if key not in labels]
        if unknown:
            raise ValueError(f"descriptions name labels that are not in labels {labels}: {unknown}")
        return lowered


class ClassificationTask(NLITask[ClassificationConfig]):
    name = "classification"
    description = "Text classification into a configured label set (task_options.labels, optional descriptions)."
    Config = ClassificationConfig
    fields = (
        FieldSpec("text", aliases=("sentence", "content", "message", "input", "review", "query", "ticket", "question")),
        FieldSpec("label", aliases=("labels", "answer", "category", "class", "intent"), required=False, kind="any", reference=True),
    )
    instruction = "Classify the text into exactly one of the labels."
    answer_noun = "label"
    id_fields = ("idx",)

    config: ClassificationConfig

    def __init__(self, config: ClassificationConfig | None = None) -> None:
        super().__init__(config)
        described = [
            f"{label} ({self.config.descriptions[label]})" if label in self.config.descriptions else label
            for label in self.config.labels
        ]
        self.answer_format = "The label is one of: " + ", ".join(described) + "."

    def render_input(self, example: Example) -> str:
        return f"Text: {example.inputs['text']}"
