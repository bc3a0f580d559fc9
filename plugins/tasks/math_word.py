"""Math word problems: reason step by step to a final number (GSM8K).

Reads GSM8K (``question``/``answer`` with a ``#### N`` last line): the reference becomes the number
and the worked solution, without calculator annotations, becomes the example's ``explanation`` (the
rationale of few-shot demos). Also accepts ``problem``/``solution`` layouts with ``\\boxed{}`` answers
and plain numeric answers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import Field

from stillhouse.kernel.interfaces import Example, FieldSpec, Metric, Parsed, TaskConfig, Verdict
from stillhouse.plugins.tasks import metrics, numbers
from stillhouse.plugins.tasks.common import PromptedTask, data_error, with_reference


class MathConfig(TaskConfig):
    rationale: str = Field(
        "keep",
        pattern="^(keep|drop|multitask)$",
        description="Student target: keep the worked solution (default: small models need the steps), drop it, or multitask.",
    )
    tolerance: float = Field(
        1e-6, ge=0, description="Absolute tolerance when comparing the final number with the gold one."
    )
    require_final_answer: bool = Field(
        True,
        description="Filter: reject a teacher output whose number is only the last one in the text, with no "
        "'Answer:', '####', '\\boxed{}' or 'the answer is' (often a solution cut off mid-way).",
    )


class MathTask(PromptedTask[MathConfig]):
    name = "math"
    description = "Math word problems (question -> worked solution + final number), GSM8K accuracy."
    Config = MathConfig
    primary_metric = "accuracy"
    fields = (
        FieldSpec("question", aliases=("problem", "query", "input")),
        FieldSpec("answer", aliases=("solution", "final_answer", "target"), required=False, kind="any", reference=True),
        FieldSpec("explanation", aliases=("rationale",), required=False),
    )
    instruction = "Solve the math word problem."
    answer_format = "The final answer is a single number, without units."
    answer_noun = "number"

    config: MathConfig

    def finish_example(self, example: Example, source: str) -> Example:
        raw = example.reference
        if raw is None:
            return example
        if isinstance(raw, str):
            value, rationale = numbers.gsm8k_gold(raw)
        else:
            value, rationale = numbers.canonical(raw), None
        if value is None:
            raise data_error(
                f"answer has no final number: {str(raw)[-60:]!r}",
                source,
                "answer",
                hint="GSM8K answers end with a line '#### <number>'; a plain number works too",
            )
        example.reference = value
        if rationale and not example.inputs.get("explanation"):
            example.inputs["explanation"] = rationale
        return example

    def render_input(self, example: Example) -> str:
        return f"Question: {example.inputs['question']}"

    def parse(self, text: str) -> Parsed:
        if not text or not text.strip():
            return Parsed(error="empty", text=text or "")
        found = numbers.final_number(text)
        if found.value is None:
            return Parsed(rationale=found.rationale, error="no_number", text=text)
        return Parsed(answer=found.value, rationale=found.rationale, text=text)

    def answer_key(self, answer: Any) -> Any:
        return numbers.canonical(str(answer))

    def verify(self, example: Example, parsed: Parsed) -> Verdict:
        # Checked first: a cut-off solution has neither a final answer nor a usable rationale,
        # and "no_final_answer" says so better than "missing_rationale".
        if parsed.ok and self.config.require_final_answer and numbers.final_number(parsed.text).how == "last":
            return Verdict(False, "no_final_answer")
        rejected = self.precheck(parsed)
        if rejected is not None:
            return rejected
        if example.reference is not None and not numbers.equal(parsed.answer, example.reference, self.config.tolerance):
            return Verdict(False, "answer_mismatch", detail=f"teacher answered {parsed.answer}, reference is {example.reference}")
        return Verdict(True, "ok")

    def score(self, examples: Sequence[Example], predictions: Sequence[Parsed]) -> list[Metric]:
        pairs = with_reference(examples, predictions)
        if not pairs:
            return metrics.unmeasured(["accuracy"])
        correct = sum(p.ok and numbers.equal(p.answer, ex.reference, self.config.tolerance) for ex, p in pairs)
        return [metrics.metric("accuracy", correct / len(pairs), len(pairs))]
