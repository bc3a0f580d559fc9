"""An oracle teacher: knows the gold answers of a labelled file and is right with probability p.

A teacher of known quality separates what a student learnt from what its teacher got wrong
(DESIGN.md §8). :class:`Oracle` reads a labelled file through a task plugin (nli, math, qa),
recognises each prompt by the example's rendered input, and answers in prose the way chat models
do ("Reasoning: ...\\nAnswer: ..."). Whether an answer is right is a pure function of (seed,
prompt, choice index): the same prompt always gets the same answer, whatever the arrival order.
Wrong answers are plausible: another label, a near number, another span of the context.

Used by :mod:`stillhouse.testing.fake_openai` (``FakeBehaviour(oracle=...)``, ``--oracle FILE``).
"""

from __future__ import annotations

import hashlib
import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stillhouse.kernel.data import load_split
from stillhouse.kernel.interfaces import Example, TaskType

ORACLE_TASKS = ("nli", "math", "qa")

_REASONS = {
    "entailment": "Everything the hypothesis says is stated or implied by the premise, so it must be true.",
    "contradiction": "The hypothesis describes something the premise rules out, so both cannot be true at once.",
    "neutral": "The premise neither confirms nor rules out the extra details in the hypothesis, so it may or may not be true.",
}
_OPENINGS = (
    "Let me look at this carefully.",
    "To answer this, I compare the two statements.",
    "First, consider what is given.",
    "Let's think step by step.",
)


def make_task(name: str) -> TaskType[Any]:  # each task has its own Config; TaskType is invariant in it
    """A built-in task plugin with its default options (what renders and parses prompts)."""
    if name == "nli":
        from stillhouse.plugins.tasks.nli import NLITask

        return NLITask()
    if name == "math":
        from stillhouse.plugins.tasks.math_word import MathTask

        return MathTask()
    if name == "qa":
        from stillhouse.plugins.tasks.qa import QATask

        return QATask()
    raise ValueError(f"the oracle knows the tasks {', '.join(ORACLE_TASKS)}, not '{name}'")


def _draw(*parts: object) -> random.Random:
    digest = hashlib.sha256("\0".join(str(p) for p in parts).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


@dataclass
class OracleStats:
    answered: int = 0
    correct: int = 0
    unknown: int = 0
    """Prompts that matched no row of the file (answered like the plain fake server)."""


@dataclass
class Oracle:
    """Right with probability ``p`` on the rows of ``path`` (a file the ``task`` plugin reads)."""

    path: Path
    task: str
    p: float = 0.9
    seed: int = 0
    limit: int | None = None
    stats: OracleStats = field(default_factory=OracleStats)

    def __post_init__(self) -> None:
        if not 0.0 <= self.p <= 1.0:
            raise ValueError(f"p must be in [0, 1], got {self.p}")
        self._task = make_task(self.task)
        loaded = load_split(self._task, Path(self.path), "train", limit=self.limit, on_bad_rows="skip")
        self.examples = [e for e in loaded.examples if e.reference is not None]
        # The rendered input ("Premise: ...\nHypothesis: ...") sits in every prompt of the example:
        # teacher prompt, student prompt, and multitask prompts with a prefix.
        self._by_input = {self._task.render_input(e): e for e in self.examples}  # type: ignore[attr-defined]

    def find(self, prompt: str) -> Example | None:
        """The example a user message asks about, or None."""
        for key, example in self._by_input.items():
            if key in prompt:
                return example
        return None

    def is_right(self, prompt: str, index: int = 0) -> bool:
        return _draw(self.seed, "right", prompt, index).random() < self.p

    def answer(self, prompt: str, index: int = 0, *, reasoning: bool = True) -> str | None:
        """The oracle's reply to a user message; None when the prompt matches no row."""
        example = self.find(prompt)
        if example is None:
            self.stats.unknown += 1
            return None
        right = self.is_right(prompt, index)
        rng = _draw(self.seed, "text", prompt, index)
        answer, because = getattr(self, f"_{self.task}")(example, right, rng)
        self.stats.answered += 1
        self.stats.correct += int(right)
        if not reasoning:
            return f"Answer: {answer}"
        return f"Reasoning: {rng.choice(_OPENINGS)} {because}\nAnswer: {answer}"

    # -- per task: (answer, a sentence of reasoning) -------------------------------------------

    def _nli(self, example: Example, right: bool, rng: random.Random) -> tuple[str, str]:
        gold = str(example.reference)
        labels = list(self._task.config.labels)
        label = gold if right else rng.choice([x for x in labels if x != gold])
        explanation = example.inputs.get("explanation") if right else None
        because = str(explanation).strip().rstrip(".").capitalize() + "." if explanation else _REASONS.get(label, "")
        return label, because

    def _math(self, example: Example, right: bool, rng: random.Random) -> tuple[str, str]:
        gold = float(example.reference)
        value = gold if right else _near_number(gold, rng)
        text = _number_text(value)
        solution = example.inputs.get("explanation") if right else None
        steps = " ".join(str(solution).split()) if solution else f"Working through the quantities gives {text}."
        return text, steps

    def _qa(self, example: Example, right: bool, rng: random.Random) -> tuple[str, str]:
        golds = list(example.reference)
        if right:
            span = golds[0]
        else:
            span = _other_span(str(example.inputs["context"]), golds, rng)
        return span, f'The context answers this directly: the relevant passage mentions "{span}".'


def _number_text(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _near_number(gold: float, rng: random.Random) -> float:
    """A plausible wrong result: off by a little, by a factor, or a slipped digit."""
    choices = [
        gold + rng.choice([-2, -1, 1, 2, 5, 10]),
        gold * rng.choice([2, 0.5, 10]),
        gold + (rng.choice([-1, 1]) * max(1.0, round(abs(gold) * 0.1))),
    ]
    for value in rng.sample(choices, len(choices)):
        if abs(value - gold) > 1e-6:
            return round(value, 2)
    return gold + 1


_WORDS = re.compile(r"[\w'$%.-]+")
# A span that starts or ends on one of these reads as a fragment, not as an answer someone would give.
_STOP = frozenset(
    "a an the of in on at to for from by with and or but is are was were be been as that this it its "
    "which who what when where how than then so not no".split()
)


def _other_span(context: str, golds: list[str], rng: random.Random) -> str:
    """A span of the context about as long as the gold answer that shares none of its words."""
    words = list(_WORDS.finditer(context))
    gold_words = {w.lower().strip(".") for g in golds for w in _WORDS.findall(g)}
    length = max(1, min(4, len(_WORDS.findall(golds[0]))))
    for _ in range(200):
        if len(words) <= length:
            break
        start = rng.randrange(0, len(words) - length)
        span = words[start : start + length]
        edges = {span[0].group().lower(), span[-1].group().lower()}
        if not edges & _STOP and not any(w.group().lower().strip(".") in gold_words for w in span):
            # sliced from the context, so the span occurs in it verbatim (a wrong answer, not a made-up one)
            return context[span[0].start() : span[-1].end()].strip(".,;: ")
    return "unknown"


def oracle_reply(oracle: Oracle, messages: list[dict[str, Any]], index: int = 0) -> str | None:
    """The reply to a chat request: reasons when the system prompt asks for reasoning."""
    system = " ".join(m["content"] for m in messages if m["role"] == "system")
    user = next((m["content"] for m in reversed(messages) if m["role"] == "user"), "")
    return oracle.answer(user, index, reasoning="Reasoning:" in system or not system)


def judge_reply(oracle: Oracle | None, prompt: str) -> str:
    """A judge's reply to the kernel's judge prompt: with an oracle that knows the row, 9 for an
    answer the task's verifier accepts against the gold answer and 2 for any other; otherwise a
    score drawn from the prompt (1..10). Always ``Score: N\\nReason: ...``."""
    from stillhouse.kernel.teacher_ensemble import ANSWER_HEADING

    question, _, answer = prompt.partition(ANSWER_HEADING)
    example = oracle.find(question) if oracle is not None else None
    if oracle is None or example is None:
        score = 1 + _draw("judge", prompt).randrange(10)
        return f"Score: {score}\nReason: a score drawn from the prompt."
    task = oracle._task
    right = task.verify(example, task.parse(answer.strip())).accepted
    if right:
        return "Score: 9\nReason: the answer is correct and its reasoning supports it."
    return "Score: 2\nReason: the answer contradicts what the input says."


def split_pair(prompt: str) -> tuple[str, str, str]:
    """(task, answer A, answer B) of the kernel's pairwise judge prompt."""
    from stillhouse.kernel.teacher_ensemble import FIRST_HEADING, SECOND_HEADING

    question, _, answers = prompt.partition(FIRST_HEADING)
    first, _, second = answers.partition(SECOND_HEADING)
    return question, first.strip(), second.strip()


def pairwise_reply(oracle: Oracle | None, prompt: str) -> str:
    """A judge's reply to the kernel's pairwise prompt: with an oracle that knows the row, the
    answer the task's verifier accepts against the gold row wins, a tie when both or neither do;
    otherwise a verdict drawn from the prompt (so swapping the answers may change it, as a judge with
    a position bias would). Always ``Winner: A|B|tie\\nReason: ...``."""
    question, first, second = split_pair(prompt)
    example = oracle.find(question) if oracle is not None else None
    if oracle is None or example is None:
        verdict = _draw("pairwise", prompt).choice(["A", "B", "tie"])
        return f"Winner: {verdict}\nReason: a verdict drawn from the prompt."
    task = oracle._task
    right = [task.verify(example, task.parse(text)).accepted for text in (first, second)]
    if right[0] == right[1]:
        return "Winner: tie\nReason: " + ("both answers are correct." if right[0] else "neither answer is correct.")
    return f"Winner: {'A' if right[0] else 'B'}\nReason: only that answer agrees with what the input says."
