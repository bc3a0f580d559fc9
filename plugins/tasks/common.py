"""What the five built-in task types share: prompt layout, rationale modes and student targets.

A task subclass says what its input looks like (``render_input``), what its answer is called
(``answer_label``), how to parse and verify an answer and how to score; this base turns that into
teacher prompts (system + optional few-shot demos + user), the student prompt, and the student
targets for the three rationale modes of the config:

- ``keep``: the student learns "Reasoning: ...\\nAnswer: ..." (when the teacher was asked to reason);
- ``drop``: the student learns the bare answer;
- ``multitask``: two targets as in "Distilling step-by-step" (Hsieh et al. 2023): the prompt prefixed
  ``[rationale]`` -> the rationale (weight ``rationale_weight``) and ``[label]`` -> the answer. The
  student is evaluated with the ``[label]`` prompt, so inference costs no rationale tokens.
"""

from __future__ import annotations

import hashlib
import random
from abc import abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar

from stillhouse.kernel.errors import DataError, Location
from stillhouse.kernel.interfaces import Example, Message, Parsed, TaskConfigT, TaskType, TrainPair, Verdict

RATIONALE_PREFIX = "[rationale]"
LABEL_PREFIX = "[label]"


class PromptedTask(TaskType[TaskConfigT]):
    """Base of the built-in task types. Subclasses set the class attributes and implement
    ``render_input`` plus the TaskType methods parse, verify and score."""

    instruction: ClassVar[str] = ""
    closing_instruction: ClassVar[str] = ""
    """Repeated after the input: small models follow the instruction nearest the end, and without
    it tend to continue a document (a dialogue, a story) instead of answering about it."""
    """Default system prompt: what the task is. ``task_options.system_prompt`` replaces it."""
    answer_label: ClassVar[str] = "Answer"
    """The word that introduces the final answer ("Answer", "Summary", "Reply")."""
    answer_format: str = ""
    """What a valid answer looks like, appended to the instructions. Not a ClassVar: a task whose
    answers depend on its options (nli, classification: the configured labels) sets it per instance."""
    answer_noun: ClassVar[str] = "answer"
    """How the instructions name the answer ("label", "number", "summary" ...)."""

    id_fields: ClassVar[tuple[str, ...]] = ()
    """Columns that identify a row when it has no ``id`` (e.g. ``fname``, ``conversation_id``)."""

    # -- to implement -------------------------------------------------------------------------

    @abstractmethod
    def render_input(self, example: Example) -> str:
        """The user message for an example: its input fields, labelled."""

    def example_from_row(
        self, row: dict[str, Any], *, split: str, index: int, source: str, mapping: dict[str, str] | None = None
    ) -> Example:
        example = super().example_from_row(row, split=split, index=index, source=source, mapping=mapping)
        if "id" not in row and "_id" not in row:
            for column in self.id_fields:
                if row.get(column) not in (None, ""):
                    example.id = str(row[column])
                    break
        return self.finish_example(example, source)

    def finish_example(self, example: Example, source: str) -> Example:
        """Post-process a mapped row: normalise the reference, derive inputs. Raise
        :func:`data_error` (naming ``source`` and the field) for values that make no sense."""
        return example

    def demo_answer(self, example: Example) -> str | None:
        """The gold answer of a few-shot demo as text (None: the row cannot be a demo)."""
        return None if example.reference is None else str(example.reference)

    def target_answer(self, parsed: Parsed) -> str:
        """The answer text the student learns from an accepted parse."""
        return str(parsed.answer)

    def answer_format_for(self, example: Example | None) -> str:
        """Format constraints for one example (a task may name e.g. the next speaker)."""
        return self.answer_format

    # -- options ------------------------------------------------------------------------------

    @property
    def student_reasons(self) -> bool:
        """Whether the student is taught to write its reasoning before the answer."""
        return self.config.rationale == "keep" and self.config.ask_rationale

    @property
    def needs_rationale(self) -> bool:
        """Whether an accepted teacher answer must come with a rationale (it is trained on)."""
        return self.config.ask_rationale and self.config.rationale in ("keep", "multitask")

    # -- prompts ------------------------------------------------------------------------------

    def system_prompt(self, example: Example | None = None, *, reasoning: bool, multitask: bool = False) -> str:
        parts = [self.config.system_prompt or self.instruction, self.answer_format_for(example)]
        if multitask:
            parts.append(
                f"If the message starts with {RATIONALE_PREFIX}, write only the reasoning that leads to the "
                f"{self.answer_noun}. If it starts with {LABEL_PREFIX}, give only the {self.answer_noun}."
            )
        elif reasoning:
            parts.append(
                f'Think it through first: write your reasoning after "Reasoning:", then give the final '
                f'{self.answer_noun} on the last line, after "{self.answer_label}:".'
            )
        else:
            parts.append(f"Give only the {self.answer_noun}, without explanation or preamble.")
        return " ".join(part.strip() for part in parts if part and part.strip())

    def format_output(self, answer: str, rationale: str | None) -> str:
        """The text of a reasoned answer; parse() reads this format back."""
        if rationale:
            return f"Reasoning: {rationale.strip()}\n{self.answer_label}: {answer}"
        return answer

    def pick_demos(self, example: Example, pool: Sequence[Example]) -> list[Example]:
        """``few_shot`` demos from ``pool``: rows with a reference other than the example itself,
        drawn with a seed from the example id, so each example sees a stable, varied set."""
        wanted = self.config.few_shot
        if wanted == 0:
            return []
        usable = [demo for demo in pool if demo.id != example.id and self.demo_answer(demo) is not None]
        if len(usable) <= wanted:
            return usable
        seed = int.from_bytes(hashlib.sha256(example.id.encode()).digest()[:8], "big")
        return random.Random(seed).sample(usable, wanted)

    def teacher_messages(self, example: Example, few_shot: Sequence[Example] = ()) -> list[Message]:
        """System instructions, then each demo as a user/assistant exchange, then the example.

        ``few_shot`` is a pool (e.g. the train split); ``task_options.few_shot`` of them are used."""
        reasoning = self.config.ask_rationale
        messages: list[Message] = [{"role": "system", "content": self.system_prompt(example, reasoning=reasoning)}]
        for demo in self.pick_demos(example, few_shot):
            answer = self.demo_answer(demo) or ""
            gold_rationale = demo.inputs.get("explanation") if reasoning else None
            if reasoning and gold_rationale:
                reply = self.format_output(answer, str(gold_rationale))
            elif reasoning:  # no gold rationale to show: still answer on the marked line
                reply = f"{self.answer_label}: {answer}"
            else:
                reply = answer
            messages.append({"role": "user", "content": self.render_request(demo)})
            messages.append({"role": "assistant", "content": reply})
        messages.append({"role": "user", "content": self.render_request(example)})
        return messages

    def render_request(self, example: Example) -> str:
        """The user message: the rendered input, then the closing instruction if the task has one."""
        text = self.render_input(example)
        return f"{text}\n\n{self.closing_instruction}" if self.closing_instruction else text

    def _student_prompt(self, example: Example, prefix: str | None) -> list[Message]:
        multitask = prefix is not None
        system = self.system_prompt(example, reasoning=self.student_reasons, multitask=multitask)
        user = self.render_request(example)
        return [
            {"role": "system", "content": system},
            {"role": "user", "content": f"{prefix} {user}" if prefix else user},
        ]

    def student_messages(self, example: Example) -> list[Message]:
        """The student's prompt: the task's instructions, in the output format the student learns.
        In multitask mode it is the ``[label]`` prompt, the one used at inference."""
        return self._student_prompt(example, LABEL_PREFIX if self.config.rationale == "multitask" else None)

    # -- targets ------------------------------------------------------------------------------

    def student_targets(self, example: Example, parsed: Parsed) -> list[TrainPair]:
        answer = self.target_answer(parsed)
        mode = self.config.rationale
        if mode == "multitask":
            pairs = [TrainPair(example.id, self._student_prompt(example, LABEL_PREFIX), answer, 1.0)]
            if parsed.rationale:
                pairs.append(
                    TrainPair(
                        example.id,
                        self._student_prompt(example, RATIONALE_PREFIX),
                        parsed.rationale,
                        self.config.rationale_weight,
                    )
                )
            return pairs
        target = self.format_output(answer, parsed.rationale) if self.student_reasons else answer
        return [TrainPair(example.id, self.student_messages(example), target, 1.0)]

    # -- verification -------------------------------------------------------------------------

    def precheck(self, parsed: Parsed) -> Verdict | None:
        """Rejections every task shares: no answer, or no rationale where one is trained on."""
        if not parsed.ok:
            return Verdict(False, parsed.error or "unparseable")
        if self.needs_rationale and not parsed.rationale:
            return Verdict(False, "missing_rationale")
        return None


def data_error(what: str, source: str, field: str, hint: str | None = None) -> DataError:
    """A DataError at a row's ``file:line`` source and a field."""
    file, _, line = source.rpartition(":")
    return DataError(what, where=Location(file or source, int(line) if line.isdigit() else None, field), hint=hint)


def with_reference(examples: Sequence[Example], predictions: Sequence[Parsed]) -> list[tuple[Example, Parsed]]:
    """The (example, prediction) pairs that can be scored: those whose example has a reference."""
    if len(examples) != len(predictions):
        raise ValueError(f"{len(examples)} examples but {len(predictions)} predictions")
    return [(ex, p) for ex, p in zip(examples, predictions, strict=True) if ex.reference is not None]


def prediction_text(parsed: Parsed) -> str:
    """A prediction as text for generation metrics: an unparseable answer scores as empty."""
    return str(parsed.answer) if parsed.ok else ""


def as_list(value: Any) -> list[str]:
    """A reference that may be one string or several, as a list of strings."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value]
