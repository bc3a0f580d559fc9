"""Metric values against hand-computed values and the reference libraries.

Hand computations are written next to each expected value so that a reader can check them.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from stillhouse.kernel.data import load_split
from stillhouse.kernel.interfaces import Example, Metric, Parsed
from stillhouse.plugins.tasks import ConversationTask, MathTask, NLITask, QATask, SummarizationTask, metrics

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "data"


def by_name(found: list[Metric]) -> dict[str, Metric]:
    return {m.name: m for m in found}


# -- SQuAD v1.1 -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [
        ("The Denver Broncos", "denver broncos"),
        ("  Levi's Stadium, in the San Francisco Bay Area!  ", "levis stadium in san francisco bay area"),
        ("an apple a day", "apple day"),
        ("Theater", "theater"),  # "the" only as a whole word
        ("U.S.A.", "usa"),
        ("the the", ""),
    ],
)
def test_squad_normalisation(raw: str, normalised: str) -> None:
    assert metrics.squad_normalize(raw) == normalised


@pytest.mark.parametrize(
    ("prediction", "golds", "em", "f1"),
    [
        ("the Denver Broncos", ["Denver Broncos"], 1.0, 1.0),
        # 1 shared token; precision 1/1, recall 1/2 -> F1 = 2*1*0.5/1.5
        ("Broncos", ["Denver Broncos"], 0.0, 2 / 3),
        ("October 1973", ["October 1973", "October", "1973"], 1.0, 1.0),
        # "in october 1973" vs "october 1973": 2 shared; P = 2/3, R = 1 -> F1 = 0.8
        ("in October, 1973.", ["October 1973"], 0.0, 0.8),
        # SQuAD dev, Super Bowl 50: gold normalises to 11 tokens ("levis stadium in san francisco bay
        # area at santa clara california"), 3 shared; P = 1, R = 3/11 -> F1 = (6/11)/(14/11) = 3/7
        (
            "Santa Clara, California",
            ["Levi's Stadium in the San Francisco Bay Area at Santa Clara, California"],
            0.0,
            3 / 7,
        ),
        # repeated tokens count once each against the gold: 2 shared of 4 predicted; P = 1/2, R = 1 -> 2/3
        ("new york new york", ["New York"], 0.0, 2 / 3),
        ("", ["Denver Broncos"], 0.0, 0.0),
        # v1.1 quirk: both normalise to "" -> exact match, but F1 has no shared token
        ("the", ["The"], 1.0, 0.0),
        # best over golds: "Broncos" matches the second gold exactly
        ("Broncos", ["Denver Broncos", "Broncos"], 1.0, 1.0),
    ],
)
def test_squad_exact_match_and_f1(prediction: str, golds: list[str], em: float, f1: float) -> None:
    assert metrics.best_over_golds(metrics.squad_exact, prediction, golds) == em
    assert metrics.best_over_golds(metrics.squad_f1, prediction, golds) == pytest.approx(f1)


def test_qa_score_averages_over_examples_with_references() -> None:
    task = QATask()
    examples = [
        Example("1", "test", {"context": "c", "question": "q"}, ["Denver Broncos"]),
        Example("2", "test", {"context": "c", "question": "q"}, ["October 1973"]),
        Example("3", "test", {"context": "c", "question": "q"}, ["1973"]),
        Example("4", "test", {"context": "c", "question": "q"}, None),  # no reference: not scored
    ]
    predictions = [task.parse("Broncos"), task.parse("Answer: October 1973"), Parsed(error="empty"), task.parse("x")]
    scores = by_name(task.score(examples, predictions))
    assert scores["exact_match"].value == pytest.approx(1 / 3)
    assert scores["f1"].value == pytest.approx((2 / 3 + 1 + 0) / 3)
    assert scores["f1"].n == 3


# -- classification -------------------------------------------------------------------------------


def test_nli_accuracy_and_macro_f1() -> None:
    task = NLITask()
    gold = ["entailment", "entailment", "neutral", "contradiction"]
    outputs = ["entailment", "Answer: neutral", "neutral", "I cannot tell what you mean."]
    examples = [Example(str(i), "test", {"premise": "p", "hypothesis": "h"}, g) for i, g in enumerate(gold)]
    scores = by_name(task.score(examples, [task.parse(o) for o in outputs]))
    assert scores["accuracy"].value == pytest.approx(2 / 4)
    # per class: entailment tp1 fp0 fn1 -> 2/3; neutral tp1 fp1 fn0 -> 2/3; contradiction tp0 -> 0
    assert scores["macro_f1"].value == pytest.approx((2 / 3 + 2 / 3 + 0) / 3)
    assert task.primary_metric == "accuracy"


def test_macro_f1_matches_the_sklearn_definition_on_a_perfect_and_a_constant_predictor() -> None:
    gold = ["a", "b", "c", "a"]
    assert metrics.macro_f1(gold, gold) == 1.0
    # always "a": class a tp2 fp2 fn0 -> 4/6; b and c 0 -> mean 2/9
    assert metrics.macro_f1(["a"] * 4, gold) == pytest.approx(2 / 9)


def test_math_accuracy() -> None:
    task = MathTask()
    examples = [Example(str(i), "test", {"question": "q"}, ref) for i, ref in enumerate(["72", "1080", "5", "10"])]
    outputs = ["#### 72", "The answer is $1,080.", "Answer: 6", "I don't know."]
    scores = by_name(task.score(examples, [task.parse(o) for o in outputs]))
    assert scores["accuracy"].value == 0.5 and scores["accuracy"].n == 4


def test_scores_without_references_are_unmeasured_not_zero() -> None:
    for task, inputs in (
        (NLITask(), {"premise": "p", "hypothesis": "h"}),
        (QATask(), {"context": "c", "question": "q"}),
        (MathTask(), {"question": "q"}),
        (SummarizationTask(), {"document": "d"}),
    ):
        found = task.score([Example("1", "test", inputs, None)], [task.parse("x")])
        assert found and all(m.value is None and m.reason and m.n == 0 for m in found), task.name
    # distinct-n needs no reference
    conversation = ConversationTask()
    found = by_name(conversation.score([Example("1", "test", {"turns": []}, None)], [conversation.parse("a b a")]))
    assert found["chrf"].value is None and found["distinct_1"].value == pytest.approx(2 / 3)


# -- ROUGE, BLEU, chrF, distinct ---------------------------------------------------------------------


def test_rouge_on_a_known_pair() -> None:
    # rouge-score's README pair. Target 9 tokens, prediction 8.
    target = "The quick brown fox jumps over the lazy dog"
    prediction = "The quick brown dog jumps on the log."
    values = metrics.rouge([prediction], [[target]])
    # unigrams shared: the x2, quick, brown, dog, jumps = 6; P 6/8, R 6/9
    assert values["rouge1"] == pytest.approx(2 * (6 / 8) * (6 / 9) / (6 / 8 + 6 / 9))
    # bigrams shared: "the quick", "quick brown" = 2; P 2/7, R 2/8 -> 4/15
    assert values["rouge2"] == pytest.approx(4 / 15)
    # LCS "the quick brown jumps the" = 5; P 5/8, R 5/9 -> 50/85
    assert values["rouge_l"] == pytest.approx(50 / 85)
    assert metrics.rouge_l(prediction, target) == pytest.approx(50 / 85)


def test_rouge_takes_the_best_reference_and_averages_examples() -> None:
    values = metrics.rouge(["a b c", "x y"], [["z", "a b c"], ["x y"]])
    assert values == pytest.approx({"rouge1": 1.0, "rouge2": 1.0, "rouge_l": 1.0})
    values = metrics.rouge(["a b c", "q"], [["a b c"], ["x y"]])
    assert values["rouge1"] == pytest.approx(0.5)


def test_bleu_brevity_penalty_by_hand() -> None:
    # Every n-gram of the hypothesis is in the reference (precisions 6/6, 5/5, 4/4, 3/3), so BLEU
    # is the brevity penalty alone: exp(1 - 7/6).
    import math

    values = metrics.bleu_chrf(["the cat sat on the mat"], [["the cat sat on the mat today"]])
    assert values["bleu"] == pytest.approx(math.exp(1 - 7 / 6), abs=1e-4)
    assert 0 < values["chrf"] < 1


def test_bleu_and_chrf_with_a_variable_number_of_references() -> None:
    # The second example has two references and matches the second one exactly; the first has one.
    hyps = ["the cat sat on the mat", "a dog barked at the mailman"]
    refs = [["the cat sat on the mat"], ["something else entirely here", "a dog barked at the mailman"]]
    values = metrics.bleu_chrf(hyps, refs)
    assert values["bleu"] == pytest.approx(1.0)
    assert values["chrf"] == pytest.approx(1.0)
    assert metrics.bleu_chrf(["zzzz qqqq"], [["the cat sat"]]) == pytest.approx({"bleu": 0.0, "chrf": 0.0})


def test_sacrebleu_values_are_divided_by_100() -> None:
    from sacrebleu.metrics import BLEU, CHRF

    hyps = ["The doctor sends the patient to a specialist.", "They agree to meet at the gym."]
    refs = [["The doctor will send #Person2# to a pulmonary specialist."], ["Jimmy and his friend agree to work out."]]
    values = metrics.bleu_chrf(hyps, refs)
    streams = [[r[0] for r in refs]]
    assert values["bleu"] == pytest.approx(BLEU().corpus_score(hyps, streams).score / 100)
    assert values["chrf"] == pytest.approx(CHRF().corpus_score(hyps, streams).score / 100)


def test_distinct_n_by_hand() -> None:
    # unigrams a b a | a b -> 2 unique of 5; bigrams (a b)(b a) | (a b) -> 2 of 3
    assert metrics.distinct_n(["a b a", "A B"], 1) == pytest.approx(2 / 5)
    assert metrics.distinct_n(["a b a", "A B"], 2) == pytest.approx(2 / 3)
    assert metrics.distinct_n(["", "one"], 2) is None


# -- whole tasks on the real fixtures -----------------------------------------------------------------


def test_summarization_scores_gold_summaries_perfectly_and_copies_poorly() -> None:
    task = SummarizationTask()
    examples = load_split(task, FIXTURES / "summarization.jsonl", "test").examples
    perfect = by_name(task.score(examples, [task.parse(ex.reference) for ex in examples]))
    assert {m: perfect[m].value for m in ("rouge1", "rouge2", "rouge_l", "bleu", "chrf")} == pytest.approx(
        {"rouge1": 1.0, "rouge2": 1.0, "rouge_l": 1.0, "bleu": 1.0, "chrf": 1.0}
    )
    # The first line of each dialogue as the "summary": a weak baseline, well below gold.
    lead = [task.parse(ex.inputs["document"].splitlines()[0]) for ex in examples]
    weak = by_name(task.score(examples, lead))
    assert all(0 < weak[m].value < 0.5 for m in ("rouge1", "rouge_l", "chrf"))
    assert weak["rouge2"].value < weak["rouge1"].value
    assert task.primary_metric == "rouge_l" and weak["rouge_l"].n == len(examples)


def test_conversation_scores_on_topical_chat() -> None:
    task = ConversationTask()
    examples = load_split(task, FIXTURES / "conversation.jsonl", "test").examples
    gold = by_name(task.score(examples, [task.parse(ex.reference) for ex in examples]))
    assert gold["chrf"].value == pytest.approx(1.0) and gold["rouge_l"].value == pytest.approx(1.0)
    # Repeating the previous turn: some overlap, far below gold; one canned reply: distinct collapses.
    echo = by_name(task.score(examples, [task.parse(ex.inputs["turns"][-1]["text"]) for ex in examples]))
    assert 0 < echo["chrf"].value < 0.5
    canned = by_name(task.score(examples, [task.parse("That is cool!") for _ in examples]))
    assert canned["distinct_1"].value == pytest.approx(3 / (3 * len(examples)))
    assert gold["distinct_1"].value > canned["distinct_1"].value
    assert task.primary_metric == "chrf"


def test_primary_metrics_are_among_each_task_metrics() -> None:
    for task, inputs, reference in (
        (NLITask(), {"premise": "p", "hypothesis": "h"}, "neutral"),
        (QATask(), {"context": "c", "question": "q"}, ["a"]),
        (MathTask(), {"question": "q"}, "1"),
        (SummarizationTask(), {"document": "d"}, "a summary"),
        (ConversationTask(), {"turns": []}, "a reply"),
    ):
        found = by_name(task.score([Example("1", "test", inputs, reference)], [task.parse("a")]))
        assert found[task.primary_metric].value is not None
        assert all(0.0 <= m.value <= 1.0 for m in found.values() if m.value is not None)
