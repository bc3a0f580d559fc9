"""Task metrics, all on a 0..1 scale.

SQuAD v1.1 exact match and F1 follow the official evaluation script (normalisation: lower case,
drop punctuation, drop the articles a/an/the, collapse white space; F1 over bag-of-token overlap;
best score over the gold answers). ROUGE comes from Google's ``rouge-score`` and BLEU/chrF from
``sacrebleu``; both are imported inside the functions so that importing a task plugin stays cheap.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Callable, Sequence

from stillhouse.kernel.interfaces import Metric

NO_REFERENCES = "no examples with a reference answer"

_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCTUATION = frozenset(string.punctuation)


# -- SQuAD v1.1 -------------------------------------------------------------------------------


def squad_normalize(text: str) -> str:
    """The official SQuAD v1.1 answer normalisation (order matters: punctuation, then articles)."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in _PUNCTUATION)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def squad_exact(prediction: str, gold: str) -> float:
    return float(squad_normalize(prediction) == squad_normalize(gold))


def squad_f1(prediction: str, gold: str) -> float:
    """Token-overlap F1 as in the v1.1 script: no overlap (including empty texts) scores 0."""
    predicted = squad_normalize(prediction).split()
    expected = squad_normalize(gold).split()
    common = Counter(predicted) & Counter(expected)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision = same / len(predicted)
    recall = same / len(expected)
    return 2 * precision * recall / (precision + recall)


def best_over_golds(score: Callable[[str, str], float], prediction: str, golds: Sequence[str]) -> float:
    """max(score(prediction, gold)) over the gold answers, as the official script does."""
    return max((score(prediction, gold) for gold in golds), default=0.0)


# -- classification -----------------------------------------------------------------------------


def accuracy(predicted: Sequence[object], gold: Sequence[object]) -> float:
    """Share of predictions equal to gold; a missing prediction (None) counts as wrong."""
    if not gold:
        raise ValueError("accuracy of no examples")
    return sum(p is not None and p == g for p, g in zip(predicted, gold, strict=True)) / len(gold)


def macro_f1(predicted: Sequence[object], gold: Sequence[object]) -> float:
    """Unweighted mean of per-class F1 over the classes seen in gold or predictions (as
    scikit-learn's ``f1_score(average="macro")``). A missing prediction (None) is wrong for every
    class but is not a class itself."""
    classes = sorted({g for g in gold} | {p for p in predicted if p is not None}, key=str)
    if not classes:
        raise ValueError("macro-F1 of no examples")
    scores = []
    for label in classes:
        tp = sum(p == label and g == label for p, g in zip(predicted, gold, strict=True))
        fp = sum(p == label and g != label for p, g in zip(predicted, gold, strict=True))
        fn = sum(p != label and g == label for p, g in zip(predicted, gold, strict=True))
        scores.append(0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn))
    return sum(scores) / len(scores)


# -- generation -----------------------------------------------------------------------------------


def rouge(predictions: Sequence[str], references: Sequence[Sequence[str]]) -> dict[str, float]:
    """Mean ROUGE-1/2/L F-measure (rouge-score, Porter stemming); with several references an
    example scores its best one."""
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
    totals = {"rouge1": 0.0, "rouge2": 0.0, "rouge_l": 0.0}
    for prediction, refs in zip(predictions, references, strict=True):
        scores = scorer.score_multi(list(refs), prediction)
        totals["rouge1"] += scores["rouge1"].fmeasure
        totals["rouge2"] += scores["rouge2"].fmeasure
        totals["rouge_l"] += scores["rougeL"].fmeasure
    n = len(predictions)
    return {name: value / n for name, value in totals.items()}


def rouge_l(prediction: str, reference: str) -> float:
    """ROUGE-L F-measure of one pair (for verification thresholds)."""
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    return scorer.score(reference, prediction)["rougeL"].fmeasure


def _reference_streams(references: Sequence[Sequence[str]]) -> list[list[str | None]]:
    """sacrebleu wants one stream per reference position; examples with fewer references are
    padded with None, which sacrebleu skips."""
    depth = max(len(refs) for refs in references)
    return [[refs[i] if i < len(refs) else None for refs in references] for i in range(depth)]


def bleu_chrf(predictions: Sequence[str], references: Sequence[Sequence[str]]) -> dict[str, float]:
    """Corpus BLEU (13a tokenisation, exp smoothing) and chrF (β=2), both divided by 100."""
    from sacrebleu.metrics import BLEU, CHRF

    streams = _reference_streams(references)
    hyps = list(predictions)
    return {
        "bleu": BLEU().corpus_score(hyps, streams).score / 100,  # type: ignore[arg-type]
        "chrf": CHRF().corpus_score(hyps, streams).score / 100,  # type: ignore[arg-type]
    }


def distinct_n(texts: Sequence[str], n: int) -> float | None:
    """Distinct-n (Li et al. 2016): unique n-grams / all n-grams over all texts, lower-cased
    white-space tokens. None when the texts hold no n-gram at all."""
    grams: list[tuple[str, ...]] = []
    for text in texts:
        tokens = text.lower().split()
        grams.extend(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))
    return len(set(grams)) / len(grams) if grams else None


# -- building Metric records ----------------------------------------------------------------------


def metric(name: str, value: float | None, n: int, reason: str | None = None) -> Metric:
    """A task metric: None with a reason when nothing could be scored, never a made-up 0."""
    if n == 0 and value is None:
        reason = reason or NO_REFERENCES
    return Metric(name=name, value=value, n=n, reason=None if value is not None else reason, higher_is_better=True)


def unmeasured(names: Sequence[str], reason: str = NO_REFERENCES) -> list[Metric]:
    return [Metric(name=name, value=None, n=0, reason=reason, higher_is_better=True) for name in names]
