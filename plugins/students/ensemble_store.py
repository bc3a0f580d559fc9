"""Logit distillation from several local ``hf/`` teachers of a ``[[teachers]]`` list.

Each local teacher that shares the student's tokenizer gets its own top-k store
(``teacher_topk.teachers/<name>/``, the format of :mod:`.teacher_store`: rows keyed by the content
hash of each sample's tokens, reused while the teacher's model, k and the samples stay the same).
The stores are then combined position by position (:func:`.ensemble_topk.combine_topk`: the
weighted average of the teachers' probabilities, renormalised over the k most likely tokens) into
the one store training reads (``teacher_topk/``), labelled by the teachers, models and weights, so a
change of any of them rebuilds it. Teachers are loaded one at a time: only one is in memory.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from stillhouse.kernel.interfaces import NamedTeacher
from stillhouse.plugins.students.data import TokenizedSample
from stillhouse.plugins.students.ensemble_topk import combine_topk
from stillhouse.plugins.students.teacher import local_teacher_spec
from stillhouse.plugins.students.teacher_store import TopKStore, model_fill, open_store, write_store

TEACHERS_DIR = "teacher_topk.teachers"
"""Run-folder folder of the per-teacher stores, one sub-folder per teacher name."""

Writer = Callable[[TokenizedSample, np.ndarray, np.ndarray], None]


def local_teachers(teachers: Sequence[NamedTeacher]) -> list[NamedTeacher]:
    """The entries of a ``[[teachers]]`` list that run as local models (``hf/...``)."""
    return [t for t in teachers if local_teacher_spec(t.config) is not None]


def ensemble_label(teachers: Sequence[NamedTeacher]) -> str:
    """What the combined store is of: every teacher's name, model and weight."""
    return "ensemble(" + ", ".join(f"{t.name}={t.config.model}*{t.weight:g}" for t in teachers) + ")"


def teacher_store(
    run_dir: Path,
    samples: Sequence[TokenizedSample],
    named: NamedTeacher,
    *,
    k: int,
    vocab_size: int,
    pad_id: int,
    batch_tokens: int,
    log: Callable[[str], None],
) -> TopKStore:
    """One local teacher's own top-k store, reused when it covers the samples."""
    from stillhouse.plugins.students.teacher import load_teacher

    store_dir = f"{TEACHERS_DIR}/{named.name}"
    store = open_store(run_dir, samples, teacher=named.config.model, k=k, store_dir=store_dir)
    if store is not None:
        log(f"teacher '{named.name}' top-k store reused: {store.meta.positions} positions, k={k}")
        return store
    log(f"computing teacher '{named.name}' top-{k} log-probs over {len(samples)} samples (once)")
    model, _ = load_teacher(named.config)
    try:
        fill = model_fill(model, pad_id=pad_id, k=k, vocab_size=vocab_size, batch_tokens=batch_tokens)
        return write_store(
            run_dir, samples, fill, teacher=named.config.model, k=k, vocab_size=vocab_size, source="model", store_dir=store_dir
        )
    finally:
        del model


def combined_fill(parts: Sequence[tuple[float, TopKStore]], k: int) -> Callable[[list[TokenizedSample], Writer], None]:
    """A FillFn writing, per sample, the weighted combination of the teachers' stored top-k."""

    def fill(samples: list[TokenizedSample], write: Writer) -> None:
        for sample in samples:
            aligned = []
            for weight, store in parts:
                ids, lps = store.rows(store.offset(sample), sample.n_targets)
                aligned.append((weight, (ids.astype(np.int64), lps.astype(np.float32))))
            write(sample, *combine_topk(aligned, k))

    return fill


def ensemble_store(
    run_dir: Path,
    samples: Sequence[TokenizedSample],
    teachers: Sequence[NamedTeacher],
    tokenizer: Any,
    *,
    k: int,
    batch_tokens: int,
    log: Callable[[str], None],
) -> TopKStore:
    """The combined top-k store of several local teachers (built from their own stores when needed)."""
    label = ensemble_label(teachers)
    store = open_store(run_dir, samples, teacher=label, k=k)
    if store is not None:
        log(f"combined top-k store of {len(teachers)} teachers reused: {store.meta.positions} positions, k={k}")
        return store
    vocab_size = len(tokenizer)
    parts = [
        (
            t.weight,
            teacher_store(
                run_dir, samples, t, k=k, vocab_size=vocab_size, pad_id=tokenizer.pad_token_id, batch_tokens=batch_tokens, log=log
            ),
        )
        for t in teachers
    ]
    weights = ", ".join(f"{t.name} {t.weight:g}" for t in teachers)
    log(f"combining the top-{k} of {len(teachers)} local teachers by weight ({weights}) into one target distribution")
    return write_store(run_dir, samples, combined_fill(parts, k), teacher=label, k=k, vocab_size=vocab_size, source="ensemble")
