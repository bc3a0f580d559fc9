"""Data curation: duplicate prompts, evaluation leaks, label balance and a carved validation split.

The pipeline calls this module at two points:

* when the splits are loaded (:func:`curate_splits`), before any teacher call: exact and near
  duplicate prompts of the train and validation splits are removed (``data.dedup``), training rows
  that nearly match an evaluation row are dropped or reported (``data.contamination``), and a
  validation split is carved from train, stratified by label, when none is given
  (``data.validation_fraction``);
* before training (:func:`balance_training`): the label distribution of the input, of the teacher's
  accepted answers and of the training set is reported, and the training set is balanced
  (``data.balance``: downsample, upsample, or class weights carried by each pair's loss weight).

Near duplicates are found with MinHash signatures and an LSH index from ``datasketch``; each
candidate the index returns is then checked exactly: the Jaccard similarity of character 5-grams of
the normalised text must reach the threshold in *every* input field, so two NLI rows with one
premise and different hypotheses are not duplicates. Every step returns a report (a ``curation``
event's payload) with counts and a few examples.
"""

from __future__ import annotations

import json
import random
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from functools import partial
from typing import TYPE_CHECKING, Any

from stillhouse.kernel.errors import ConfigError, DataError, Location

if TYPE_CHECKING:
    from datasketch import MinHash

    from stillhouse.kernel.config import ContaminationConfig, DataConfig, DedupConfig, PipelineBase
    from stillhouse.kernel.data import LoadedSplit
    from stillhouse.kernel.interfaces import Example, TaskType, TrainPair

SHINGLE = 5
"""Characters per shingle: short prompts (an NLI hypothesis) still have enough of them."""
NUM_PERM = 128
"""MinHash permutations (datasketch's default)."""
EXAMPLES_KEPT = 5
"""Examples of removed rows kept in a report."""
DEFAULT_VALIDATION_FRACTION = 0.1
"""Share of train carved as validation when early stopping needs one and none is given."""
MISSING = "(missing)"
"""The group of rows without the field a balance is done by."""


# -- text ---------------------------------------------------------------------------------------


def normalise(text: str) -> str:
    """Case and spacing do not make a prompt different."""
    return " ".join(text.casefold().split())


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


def prompt_fields(example: Example, task: TaskType | None = None) -> dict[str, str]:
    """The normalised text of each input field the prompt shows: what the teacher is asked about,
    without the task's instructions (shared by every prompt, they would make all prompts look
    alike). With ``task``, a text field its student prompt does not show (NLI's explanation, used
    only in few-shot demos) is left out."""
    fields = {name: _as_text(value) for name, value in sorted(example.inputs.items())}
    if task is not None:
        shown = "\n".join(str(m.get("content", "")) for m in task.student_messages(example))
        asked = {name: text for name, text in fields.items() if not isinstance(example.inputs[name], str) or text in shown}
        fields = asked or fields
    return {name: normalise(text) for name, text in fields.items()}


FieldsOf = Callable[["Example"], dict[str, str]]
"""The prompt fields of an example (:func:`prompt_fields`, with or without the task)."""
Sketch = tuple[dict[str, frozenset[str]], "MinHash"]
"""An example's shingles per field and its MinHash signature."""


def shingles(text: str, n: int = SHINGLE) -> frozenset[str]:
    """Character n-grams of ``text`` (the text itself when shorter)."""
    if len(text) <= n:
        return frozenset({text})
    return frozenset(text[i : i + n] for i in range(len(text) - n + 1))


def similarity(a: Mapping[str, frozenset[str]], b: Mapping[str, frozenset[str]]) -> float:
    """The least Jaccard similarity over the input fields (0 when the fields differ)."""
    if a.keys() != b.keys():
        return 0.0
    least = 1.0
    for name, left in a.items():
        right = b[name]
        union = len(left | right)
        least = min(least, len(left & right) / union if union else 1.0)
    return least


def _preview(example: Example, names: Iterable[str], limit: int = 120) -> str:
    text = " | ".join(_as_text(example.inputs[name]) for name in names)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


class NearIndex:
    """Examples' shingles in a datasketch MinHash LSH index, queried for the closest match at or
    above ``threshold`` (LSH proposes, the exact per-field Jaccard decides)."""

    def __init__(self, threshold: float, fields_of: FieldsOf = prompt_fields) -> None:
        from datasketch import MinHashLSH

        self.threshold = threshold
        self.fields_of = fields_of
        # The index runs at a lower threshold than asked: it misses fewer true matches, and the
        # exact check below removes the extra candidates it proposes.
        self.lsh = MinHashLSH(threshold=max(0.05, threshold - 0.15), num_perm=NUM_PERM)
        self.items: dict[str, tuple[Example, dict[str, frozenset[str]]]] = {}

    def sketch_all(self, examples: Sequence[Example]) -> list[Sketch]:
        """Each example's shingles per field and MinHash signature (computed in bulk: one set of
        permutations for all, so signatures of every index compare)."""
        from datasketch import MinHash

        fields = [{name: shingles(text) for name, text in self.fields_of(e).items()} for e in examples]
        # Field-tagged shingles: the same words in another field are not the same prompt.
        tokens = [[f"{name}\x1f{s}".encode() for name, grams in f.items() for s in sorted(grams)] for f in fields]
        return list(zip(fields, MinHash.bulk(tokens, num_perm=NUM_PERM), strict=True))

    def add(self, example: Example, sketched: Sketch) -> None:
        fields, signature = sketched
        key = str(len(self.items))
        self.items[key] = (example, fields)
        self.lsh.insert(key, signature)

    def match(self, sketched: Sketch, accept: Callable[[Example], bool] = lambda _other: True) -> tuple[Example, float] | None:
        """The most similar indexed example at or above the threshold that ``accept`` allows."""
        fields, signature = sketched
        best: tuple[Example, float] | None = None
        for key in sorted(self.lsh.query(signature), key=int):
            other, other_fields = self.items[key]
            score = similarity(fields, other_fields)
            if score >= self.threshold and (best is None or score > best[1]) and accept(other):
                best = (other, score)
        return best


def same_answer(example: Example, other: Example) -> bool:
    """Whether two near-identical prompts may be one sample: not when both have a reference and
    the references differ (NLI's minimal pairs: "a man ..." / "a woman ...", entailment /
    contradiction, are two questions)."""
    return example.reference is None or other.reference is None or example.reference == other.reference


def _exact_key(example: Example, fields_of: FieldsOf) -> tuple[tuple[str, str], ...]:
    return tuple(fields_of(example).items())


# -- duplicates ---------------------------------------------------------------------------------


def deduplicate(
    examples: Sequence[Example], config: DedupConfig, split: str, fields_of: FieldsOf = prompt_fields
) -> tuple[list[Example], dict[str, Any]]:
    """The examples without exact and near duplicates of an earlier example (the first is kept),
    and a ``curation`` report of what went."""
    kept: list[Example] = []
    seen: dict[tuple[tuple[str, str], ...], Example] = {}
    index = NearIndex(config.threshold, fields_of) if config.near else None
    removed = Counter[str]()
    shown: list[dict[str, Any]] = []
    sketches = index.sketch_all(examples) if index is not None else []
    for i, example in enumerate(examples):
        key = _exact_key(example, fields_of)
        found: tuple[Example, float] | None = None
        kind = "exact"
        if config.exact and key in seen:
            found = (seen[key], 1.0)
        if found is None and index is not None:
            found = index.match(sketches[i], partial(same_answer, example))
            kind = "near"
            if found is None and index.match(sketches[i]) is not None:
                removed["kept_other_reference"] += 1
        if found is not None:
            removed[kind] += 1
            if len(shown) < EXAMPLES_KEPT:
                shown.append(_shown(example, found, fields_of, kept_as="kept"))
            continue
        seen.setdefault(key, example)
        if index is not None:
            index.add(example, sketches[i])
        kept.append(example)
    report = {
        "step": "dedup",
        "split": split,
        "before": len(examples),
        "after": len(kept),
        "removed": {"exact": removed["exact"], "near": removed["near"]},
        # near-identical prompts kept because their references differ (see same_answer)
        "kept_other_reference": removed["kept_other_reference"],
        "threshold": config.threshold,
        "examples": shown,
    }
    return kept, report


def _shown(example: Example, found: tuple[Example, float], fields_of: FieldsOf, *, kept_as: str) -> dict[str, Any]:
    other, score = found
    text = _preview(example, fields_of(example))
    return {"id": example.id, kept_as: other.id, "similarity": round(score, 3), "text": text, "source": example.source}


# -- contamination ------------------------------------------------------------------------------


def decontaminate(
    train: Sequence[Example],
    evaluation: Mapping[str, Sequence[Example]],
    config: ContaminationConfig,
    fields_of: FieldsOf = prompt_fields,
    *,
    split: str = "train",
) -> tuple[list[Example], dict[str, Any]]:
    """Examples of ``split`` (train, or validation against test) whose prompt nearly matches a row
    of an evaluation split, counted per split; dropped when ``config.mode`` is "drop"."""
    indexes: dict[str, tuple[dict[tuple[tuple[str, str], ...], Example], NearIndex]] = {}
    for name, rows in evaluation.items():
        exact: dict[tuple[tuple[str, str], ...], Example] = {}
        index = NearIndex(config.threshold, fields_of)
        for row, sketched in zip(rows, index.sketch_all(rows), strict=True):
            exact.setdefault(_exact_key(row, fields_of), row)
            index.add(row, sketched)
        indexes[name] = (exact, index)
    kept: list[Example] = []
    matches = Counter[str]()
    shown: list[dict[str, Any]] = []
    leaked = 0
    sketches = NearIndex(config.threshold, fields_of).sketch_all(train) if indexes else []
    for i, example in enumerate(train):
        hit = False
        for name, (exact, index) in indexes.items():
            found: tuple[Example, float] | None = None
            if (same := exact.get(_exact_key(example, fields_of))) is not None:
                found = (same, 1.0)
            else:
                found = index.match(sketches[i])
            if found is not None:
                hit = True
                matches[name] += 1
                if len(shown) < EXAMPLES_KEPT:
                    shown.append({**_shown(example, found, fields_of, kept_as="matches"), "split": name})
        leaked += hit
        if not (hit and config.mode == "drop"):
            kept.append(example)
    report = {
        "step": "contamination",
        "split": split,
        "mode": config.mode,
        "before": len(train),
        "after": len(kept),
        "matches": {name: matches[name] for name in evaluation},
        "leaked": leaked,
        "threshold": config.threshold,
        "examples": shown,
    }
    return kept, report


# -- a validation split carved from train -------------------------------------------------------


def stratified_split(
    examples: Sequence[Example], fraction: float, seed: int, label_of: Callable[[Example], str]
) -> tuple[list[Example], list[Example]]:
    """(kept, carved): ``round(fraction * n)`` examples (at least one, never all) carved out so that
    each label keeps its share (largest remainder), chosen at random with ``seed``; order kept."""
    total = len(examples)
    wanted = min(total - 1, max(1, round(fraction * total)))
    groups: dict[str, list[int]] = defaultdict(list)
    for i, example in enumerate(examples):
        groups[label_of(example)].append(i)
    exact = {label: len(rows) * wanted / total for label, rows in groups.items()}
    quota = {label: int(share) for label, share in exact.items()}
    by_remainder = sorted(groups, key=lambda label: (-(exact[label] - quota[label]), label))
    for label in by_remainder[: wanted - sum(quota.values())]:
        quota[label] += 1
    rng = random.Random(seed)
    carved: set[int] = set()
    for label in sorted(groups):
        carved.update(rng.sample(groups[label], quota[label]))
    kept = [e for i, e in enumerate(examples) if i not in carved]
    return kept, [e for i, e in enumerate(examples) if i in carved]


def _reference_label(example: Example) -> str:
    return MISSING if example.reference is None else _as_text(example.reference)


# -- the splits, curated ------------------------------------------------------------------------


def validation_fraction(cfg: PipelineBase) -> float:
    """The share of train to carve as validation: as configured, else 0.1 when early stopping
    needs a validation metric and none is given, else nothing."""
    if cfg.data.validation is not None:
        return 0.0
    if cfg.data.validation_fraction is not None:
        return cfg.data.validation_fraction
    return DEFAULT_VALIDATION_FRACTION if cfg.train.early_stopping_patience else 0.0


def curate_splits(
    task: TaskType, cfg: PipelineBase, splits: dict[str, LoadedSplit], *, seed: int
) -> list[dict[str, Any]]:
    """Curate loaded splits in place (before any teacher call) and return one report per step.

    Train and a given validation split lose their duplicates; train loses rows that leak into the
    test or validation split; a validation split is carved from train when configured."""
    from stillhouse.kernel.data import LoadedSplit

    data = cfg.data
    reports: list[dict[str, Any]] = []

    def fields_of(example: Example) -> dict[str, str]:
        return prompt_fields(example, task)

    if "train" in splits and data.balance_by:
        _check_balance_field(splits["train"], data.balance_by)
    if data.dedup.exact or data.dedup.near:
        for name in ("train", "validation"):
            if name in splits:
                splits[name].examples, report = deduplicate(splits[name].examples, data.dedup, name, fields_of)
                reports.append(report)
    if data.contamination.mode != "off" and "validation" in splits and "test" in splits:
        # a validation row that is also a test row: early stopping and sweeps would select on the test set
        kept, report = decontaminate(
            splits["validation"].examples, {"test": splits["test"].examples}, data.contamination, fields_of, split="validation"
        )
        reports.append(report)
        splits["validation"].examples = kept
    evaluation: dict[str, list[Example]] = {name: splits[name].examples for name in ("test", "validation") if name in splits}
    if data.contamination.mode != "off" and "train" in splits and evaluation:
        kept, report = decontaminate(splits["train"].examples, evaluation, data.contamination, fields_of)
        reports.append(report)
        splits["train"].examples = kept
    fraction = validation_fraction(cfg)
    if fraction and "train" in splits:
        train = splits["train"]
        if len(train.examples) < 2:
            raise DataError(
                "too few training rows to carve a validation split from",
                where=Location(field="data.validation_fraction"),
                hint="add rows, give data.validation, or set data.validation_fraction = 0",
            )
        labelled = task.label_choices() is not None
        label_of = _reference_label if labelled else (lambda _e: "all")
        kept, carved = stratified_split(train.examples, fraction, seed, label_of)
        for example in carved:
            example.split = "validation"
        train.examples = kept
        splits["validation"] = LoadedSplit("validation", carved, columns=train.columns)
        reports.append(
            {
                "step": "validation_split",
                "split": "validation",
                "fraction": fraction,
                "before": len(kept) + len(carved),
                "after": len(kept),
                "carved": len(carved),
                "stratified_by": "label" if labelled else None,
                "distributions": (
                    {"train": dict(Counter(map(label_of, kept))), "validation": dict(Counter(map(label_of, carved)))}
                    if labelled
                    else {}
                ),
            }
        )
    return reports


def require_training_rows(train: LoadedSplit, reports: Iterable[Mapping[str, Any]]) -> None:
    """Stop before the teacher is asked when the contamination check left no training row (the
    evaluate stage alone may still run: it reads only the evaluation split)."""
    if train.examples:
        return
    for report in reports:
        if (
            report.get("step") == "contamination"
            and report.get("split", "train") == "train"
            and report.get("before")
            and not report.get("after")
        ):
            raise DataError(
                f"every training row nearly matches a row of the {' or '.join(report['matches'])} split, so nothing is left to train on",
                where=Location(field="data.contamination"),
                details=[f"{e['id']} ~ {e['split']} {e['matches']}: {e['text']}" for e in report.get("examples") or []],
                hint="use held-out rows for evaluation; if the overlap is intended, set data.contamination = { mode = \"report\" }",
            )


def _check_balance_field(train: LoadedSplit, name: str) -> None:
    if not any(_field_value(e, name, train.columns) != MISSING for e in train.examples):
        raise DataError(
            f"data.balance_by names '{name}', which no row of the train split has",
            where=Location(field="data.balance_by"),
            hint="name a column of the train file (e.g. topic, source) or one of the task's input fields",
        )


def _field_value(example: Example, name: str, columns: Mapping[str, Mapping[str, Any]]) -> str:
    value = example.inputs.get(name)
    if value is None:
        value = columns.get(example.id, {}).get(name)
    return MISSING if value is None else _as_text(value)


# -- balance ------------------------------------------------------------------------------------


def balance_plan(labels: Mapping[str, str], mode: str, seed: int) -> dict[str, tuple[int, float]]:
    """For each sample id, (copies, loss weight) that balances its label against the others:
    downsample keeps as many of each label as the rarest has, upsample repeats each label up to the
    commonest's count, weights gives each label the same total weight (n / (k * count))."""
    groups: dict[str, list[str]] = defaultdict(list)
    for sample_id, label in labels.items():
        groups[label].append(sample_id)
    plan = dict.fromkeys(labels, (1, 1.0))
    if mode == "none" or not groups:
        return plan
    counts = {label: len(ids) for label, ids in groups.items()}
    rng = random.Random(seed)
    if mode == "downsample":
        least = min(counts.values())
        for label in sorted(groups):
            keep = set(rng.sample(groups[label], least))
            for sample_id in groups[label]:
                plan[sample_id] = (1 if sample_id in keep else 0, 1.0)
    elif mode == "upsample":
        most = max(counts.values())
        for label in sorted(groups):
            ids = groups[label]
            base, extra = divmod(most, len(ids))
            more = set(rng.sample(ids, extra))
            for sample_id in ids:
                plan[sample_id] = (base + (sample_id in more), 1.0)
    elif mode == "weights":
        total, k = len(labels), len(groups)
        for label, ids in groups.items():
            weight = total / (k * counts[label])
            for sample_id in ids:
                plan[sample_id] = (1, weight)
    return plan


def balance_training(
    pairs: Sequence[TrainPair],
    data: DataConfig,
    task: TaskType,
    records: Iterable[Mapping[str, Any]],
    train: LoadedSplit | None,
    *,
    seed: int,
) -> tuple[list[TrainPair], dict[str, Any] | None]:
    """The training pairs balanced as ``data.balance`` asks, and a report of the label (or
    ``data.balance_by`` field) distribution of the input, of the teacher's accepted answers and of
    the training set. No report (and the pairs unchanged) for a task without labels and no
    balance_by."""
    by = data.balance_by
    if by is None and task.label_choices() is None:
        return list(pairs), None
    examples = {e.id: e for e in train.examples} if train is not None else {}
    columns = train.columns if train is not None else {}

    def label_of_record(record: Mapping[str, Any]) -> str:
        if by is not None:
            example = examples.get(str(record.get("sample_id")))
            return _field_value(example, by, columns) if example is not None else MISSING
        answer = record.get("parsed_answer")
        return MISSING if answer is None else _as_text(task.answer_key(answer))

    accepted = {str(r["sample_id"]): label_of_record(r) for r in records if r.get("split") == "train" and r.get("accepted")}
    if by is not None:
        inputs = Counter(_field_value(e, by, columns) for e in examples.values())
    else:
        inputs = Counter(_reference_label(e) for e in examples.values())
    plan = balance_plan(accepted, data.balance, seed)
    balanced: list[TrainPair] = []
    for pair in pairs:
        copies, weight = plan.get(pair.sample_id, (1, 1.0))
        balanced.extend([replace(pair, weight=pair.weight * weight) if weight != 1.0 else pair] * copies)
    training = Counter[str]()
    mass: dict[str, float] = defaultdict(float)
    for sample_id, label in accepted.items():
        copies, weight = plan[sample_id]
        training[label] += copies
        mass[label] += copies * weight
    report: dict[str, Any] = {
        "step": "balance",
        "split": "train",
        "mode": data.balance,
        "by": by or "label",
        "before": len(accepted),
        "after": sum(training.values()),
        "pairs_before": len(pairs),
        "pairs_after": len(balanced),
        "distributions": {
            "input": _sorted_counts(inputs),
            "accepted": _sorted_counts(Counter(accepted.values())),
            "training": _sorted_counts(training),
        },
    }
    if data.balance == "weights":
        report["weights"] = {label: round(mass[label] / training[label], 4) for label in sorted(training) if training[label]}
        report["distributions"]["training_weight"] = {label: round(mass[label], 3) for label in sorted(mass)}
    if by is None and (labels := task.label_choices()):
        report["absent"] = [label for label in labels if not training.get(label)]
    return balanced, report


def balance_summary(report: Mapping[str, Any]) -> dict[str, Any]:
    """What the train stage's summary keeps of a balance report: the mode, what it balanced by, the
    training set's distribution (copies per label or field value) and, with class weights, the weights."""
    dists = report.get("distributions") or {}
    out: dict[str, Any] = {"mode": report.get("mode"), "by": report.get("by"), "training": dict(dists.get("training") or {})}
    if report.get("weights"):
        out["weights"] = dict(report["weights"])
    if report.get("absent"):
        out["absent"] = list(report["absent"])
    return out


def balance_brief(summary: Mapping[str, Any]) -> str:
    """One short line of a train summary's balance (the TUI's stage timeline shows it)."""
    counts = " ".join(f"{k}={v}" for k, v in (summary.get("training") or {}).items())
    line = f"balance {summary.get('mode')} by {summary.get('by')}: {counts}"
    if summary.get("weights"):
        line += " · weights " + " ".join(f"{k}={v:g}" for k, v in summary["weights"].items())
    if summary.get("absent"):
        line += f" · none of {', '.join(summary['absent'])}"
    return line


def _sorted_counts(counts: Mapping[str, float]) -> dict[str, Any]:
    return {label: counts[label] for label in sorted(counts)}


def curation_counts(reports: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """What curation removed or carved, in numbers (the generate stage's summary keeps them)."""
    counts: dict[str, Any] = {}
    for report in reports:
        step, split = report.get("step"), report.get("split")
        if step == "dedup":
            removed = report.get("removed") or {}
            counts[f"{split}_exact_duplicates"] = removed.get("exact", 0)
            counts[f"{split}_near_duplicates"] = removed.get("near", 0)
        elif step == "contamination" and split == "validation":
            counts["validation_rows_in_test"] = report.get("leaked", 0)
            counts["validation_rows_in_test_dropped"] = report.get("before", 0) - report.get("after", 0)
        elif step == "contamination":
            counts["leaked_train_rows"] = report.get("leaked", 0)
            counts["leaked_dropped"] = report.get("before", 0) - report.get("after", 0)
            counts["leaked_by_split"] = dict(report.get("matches") or {})
        elif step == "validation_split":
            counts["validation_carved"] = report.get("carved", 0)
    return counts


# -- config checks and the terminal line --------------------------------------------------------


def check_curation(cfg: PipelineBase, make_task: Callable[[], TaskType], where: Callable[[str], Location]) -> None:
    """Refuse curation options that cannot work, before anything runs (exit 2, naming the field)."""
    data = cfg.data
    if data.balance != "none" and data.balance_by is None and make_task().label_choices() is None:
        raise ConfigError(
            f"data.balance = \"{data.balance}\" needs a label to balance by, and the task '{cfg.task}' has no label field",
            where=where("balance"),
            hint="name the field or column to balance by, e.g. data.balance_by = \"topic\", or set data.balance = \"none\"",
        )
    if data.validation_fraction and data.validation is not None:
        raise ConfigError(
            "data.validation_fraction carves a validation split from train, but data.validation is given",
            where=where("validation_fraction"),
            hint="remove one of them",
        )


def describe(event: Mapping[str, Any]) -> str:
    """One line for the terminal (and the reports) from a ``curation`` event."""
    step = event.get("step")
    if step == "dedup":
        removed = event.get("removed") or {}
        return (
            f"dedup {event.get('split')}: {event.get('before')} -> {event.get('after')} rows "
            f"({removed.get('exact', 0)} exact, {removed.get('near', 0)} near duplicates removed before teacher calls)"
        ) + (
            f"; {event['kept_other_reference']} near-identical prompts kept: their references differ"
            if event.get("kept_other_reference")
            else ""
        )
    if step == "contamination":
        rows = "training" if event.get("split", "train") == "train" else str(event.get("split"))
        if not event.get("leaked"):
            checked = " and ".join(event.get("matches") or {}) or "no"
            return f"contamination: no {rows} row matches a row of the {checked} split (threshold {event.get('threshold')})"
        per_split = ", ".join(f"{n} like {name}" for name, n in (event.get("matches") or {}).items())
        action = f"dropped from {rows}" if event.get("mode") == "drop" else "kept (mode report)"
        line = f"contamination: {event.get('leaked', 0)} {rows} rows match an evaluation row ({per_split}): {action}"
        shown = event.get("examples") or []
        if shown:
            first = shown[0]
            line += f"; e.g. {first['id']} ~ {first['split']} {first['matches']}: \"{first['text']}\""
        return line
    if step == "validation_split":
        how = ", stratified by label" if event.get("stratified_by") else ""
        return f"validation split: {event.get('carved')} of {event.get('before')} training rows carved out ({event.get('fraction'):.0%}{how})"
    if step == "balance":
        dists = event.get("distributions") or {}

        def show(counts: Mapping[str, Any]) -> str:
            return " ".join(f"{k}={round(v, 3) if isinstance(v, float) else v}" for k, v in counts.items())

        parts = [f"{name} {show(dists[name])}" for name in ("input", "accepted", "training", "training_weight") if name in dists]
        line = f"balance by {event.get('by')} ({event.get('mode')}): " + " | ".join(parts)
        if event.get("absent"):
            line += f" | no accepted sample of {', '.join(event['absent'])}"
        return line
    return str(step)


__all__ = [
    "NearIndex",
    "balance_brief",
    "balance_summary",
    "balance_plan",
    "balance_training",
    "check_curation",
    "curate_splits",
    "curation_counts",
    "decontaminate",
    "deduplicate",
    "describe",
    "normalise",
    "require_training_rows",
    "shingles",
    "similarity",
    "stratified_split",
    "validation_fraction",
]
