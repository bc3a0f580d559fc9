"""Self-consistency: majority vote over several completions, with the agreement kept as confidence.

Votes are compared through each task's ``answer_key``, so "$1,080" and "1080.0", or "the Denver
Broncos" and "Denver Broncos.", count as one answer.
"""

from __future__ import annotations

import pytest

from stillhouse.kernel.interfaces import TaskType
from stillhouse.plugins.tasks import ConversationTask, MathTask, NLITask, QATask, SummarizationTask


def vote(task: TaskType, outputs: list[str]) -> tuple[object, float]:
    winner, confidence = task.aggregate([task.parse(o) for o in outputs])
    return winner.answer, confidence


@pytest.mark.parametrize(
    ("task", "outputs", "answer", "agreement"),
    [
        (MathTask(), ["#### 72", "The answer is $72.", "Answer: 72.0", "#### 70", "no idea"], "72", 3 / 5),
        (MathTask(), ["The total is $1,080.", "\\boxed{1080}", "Answer: 1080 dollars"], "1080", 1.0),
        (QATask(), ["the Denver Broncos", "Denver Broncos.", "Carolina Panthers"], "the Denver Broncos", 2 / 3),
        (
            NLITask(),
            ["Entailment", "Answer: entailment", "neutral", "The hypothesis contradicts it."],
            "entailment",
            2 / 4,
        ),
        (NLITask(), ["neutral", "Neutral.", "NEUTRAL"], "neutral", 1.0),
        (SummarizationTask(), ["Summary: They meet.", "they meet", "They part."], "They meet.", 2 / 3),
        (ConversationTask(), ["agent_2: Sure, why not?", "Sure why not", "No."], "Sure, why not?", 2 / 3),
    ],
)
def test_majority_vote_with_agreement(task: TaskType, outputs: list[str], answer: object, agreement: float) -> None:
    assert vote(task, outputs) == (answer, pytest.approx(agreement))


def test_unparseable_completions_count_against_agreement() -> None:
    # 2 of 4 completions agree; the two unreadable ones still count in the denominator.
    assert vote(MathTask(), ["#### 5", "#### 5", "I give up.", ""]) == ("5", 0.5)


def test_no_usable_completion() -> None:
    winner, confidence = MathTask().aggregate([MathTask().parse("no idea"), MathTask().parse("")])
    assert not winner.ok and winner.error == "no_number" and confidence == 0.0


def test_the_winner_keeps_its_rationale_for_the_student() -> None:
    task = MathTask()
    parsed = [task.parse("Reasoning: 6 * 12 = 72.\nAnswer: 72"), task.parse("Reasoning: 48 + 24 = 72.\nAnswer: 72")]
    winner, confidence = task.aggregate(parsed)
    assert confidence == 1.0 and winner.rationale == "6 * 12 = 72."
