"""The teacher's top-k log-probs, computed once and kept in the run folder (``teacher_topk/``).

Layout: ``ids.bin`` (uint16 when the vocabulary fits in 16 bits, else int32) and ``logprobs.bin``
(float16), both ``[positions, k]`` row-major and memory-mapped, one row per *target* position of
every sample, samples back to back; ``index.json`` says which sample (by the content hash of its
token ids) starts at which row, plus the teacher, k and dtypes. At k = 32 that is 128 bytes per
target token with 16-bit ids (192 with 32-bit ones). Prompt positions are not stored: they carry no
loss.

The store is written into ``teacher_topk.partial/`` and renamed when complete, so a kill while
building leaves no half store; a resumed run (or the next epoch) reuses it as long as it covers
every sample with the same teacher and k. Slots without a token (API teachers returning fewer
alternatives) hold id -1 / -inf (with 16-bit ids: 65535, mapped back to -1 when read).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from stillhouse.plugins.students.data import TokenizedSample

STORE_DIR = "teacher_topk"
FORMAT = 1
EMPTY_U16 = np.iinfo(np.uint16).max


@dataclass
class StoreMeta:
    teacher: str
    k: int
    id_dtype: str
    positions: int
    vocab_size: int
    source: str  # "model" | "api" | "cross" (teacher tokens aligned by characters) | "ensemble" (local teachers combined)
    offsets: dict[str, int]
    coverage: float = 1.0

    def to_json(self) -> dict[str, Any]:
        return {"format": FORMAT, **self.__dict__}


class TopKStore:
    """Read side: rows of (ids, log-probs) for a sample's target positions."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        raw = json.loads((self.path / "index.json").read_text())
        raw.pop("format", None)
        self.meta = StoreMeta(**raw)
        shape = (max(self.meta.positions, 1), self.meta.k)
        self._ids = np.memmap(self.path / "ids.bin", dtype=self.meta.id_dtype, mode="r", shape=shape)
        self._lps = np.memmap(self.path / "logprobs.bin", dtype=np.float16, mode="r", shape=shape)

    @property
    def k(self) -> int:
        return self.meta.k

    def offset(self, sample: TokenizedSample) -> int:
        return self.meta.offsets.get(sample.key(), -1)

    def rows(self, offset: int, count: int) -> tuple[np.ndarray, np.ndarray]:
        ids = np.asarray(self._ids[offset : offset + count]).astype(np.int32)
        if self.meta.id_dtype == "uint16":
            ids[ids == EMPTY_U16] = -1
        return ids, np.asarray(self._lps[offset : offset + count])

    def covers(self, samples: Sequence[TokenizedSample], *, teacher: str, k: int) -> bool:
        return self.meta.teacher == teacher and self.meta.k == k and all(s.key() in self.meta.offsets for s in samples)

    def nbytes(self) -> int:
        return sum(p.stat().st_size for p in self.path.iterdir() if p.is_file())

    def bytes_per_token(self) -> float:
        return self.nbytes() / max(self.meta.positions, 1)


def open_store(
    run_dir: Path, samples: Sequence[TokenizedSample], *, teacher: str, k: int, store_dir: str = STORE_DIR
) -> TopKStore | None:
    """The existing store when it fits these samples, teacher and k; None otherwise."""
    path = Path(run_dir) / store_dir
    if not (path / "index.json").exists():
        return None
    try:
        store = TopKStore(path)
    except (OSError, ValueError, TypeError, KeyError):
        return None  # an older format or a damaged index: rebuild
    return store if store.covers(samples, teacher=teacher, k=k) else None


FillFn = Callable[[list[TokenizedSample], Callable[[TokenizedSample, np.ndarray, np.ndarray], None]], None]
"""Computes rows for samples and hands each sample's ([n_targets, k] ids, log-probs) to a writer."""


def write_store(
    run_dir: Path,
    samples: Sequence[TokenizedSample],
    fill: FillFn,
    *,
    teacher: str,
    k: int,
    vocab_size: int,
    source: str,
    store_dir: str = STORE_DIR,
) -> TopKStore:
    """Lay out rows for the unique samples, let ``fill`` compute them, then publish atomically."""
    final = Path(run_dir) / store_dir
    partial = Path(run_dir) / (store_dir + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    unique: dict[str, TokenizedSample] = {}
    for sample in samples:
        unique.setdefault(sample.key(), sample)
    offsets: dict[str, int] = {}
    total = 0
    for key, sample in unique.items():
        offsets[key] = total
        total += sample.n_targets
    id_dtype = "uint16" if vocab_size <= EMPTY_U16 else "int32"
    shape = (max(total, 1), k)
    ids = np.memmap(partial / "ids.bin", dtype=id_dtype, mode="w+", shape=shape)
    lps = np.memmap(partial / "logprobs.bin", dtype=np.float16, mode="w+", shape=shape)
    ids[:] = EMPTY_U16 if id_dtype == "uint16" else -1
    lps[:] = -np.inf
    covered = 0

    def write(sample: TokenizedSample, top_ids: np.ndarray, top_lps: np.ndarray) -> None:
        nonlocal covered
        start = offsets[sample.key()]
        n, width = top_ids.shape
        block_ids = top_ids.astype(np.int64)
        if id_dtype == "uint16":
            block_ids[block_ids < 0] = EMPTY_U16
        ids[start : start + n, :width] = block_ids
        lps[start : start + n, :width] = top_lps.astype(np.float16)
        covered += int(np.isfinite(top_lps).any(axis=1).sum())  # a cross-tokenizer slot may have id -1

    fill(list(unique.values()), write)
    ids.flush()
    lps.flush()
    meta = StoreMeta(teacher, k, id_dtype, total, vocab_size, source, offsets, covered / max(total, 1))
    (partial / "index.json").write_text(json.dumps(meta.to_json()))
    shutil.rmtree(final, ignore_errors=True)
    os.replace(partial, final)
    return TopKStore(final)


def length_groups(lengths: Sequence[int], batch_tokens: int) -> list[list[int]]:
    """Indices grouped shortest first into batches of about ``batch_tokens`` tokens (a longer
    sequence gets a batch of its own)."""
    groups: list[list[int]] = [[]]
    used = 0
    for i in sorted(range(len(lengths)), key=lambda i: lengths[i]):
        if groups[-1] and used + lengths[i] > batch_tokens:
            groups.append([])
            used = 0
        groups[-1].append(i)
        used += lengths[i]
    return [g for g in groups if g]


def model_fill(
    model: Any,
    *,
    pad_id: int,
    k: int,
    vocab_size: int,
    batch_tokens: int,
    on_progress: Callable[[int, int], None] | None = None,
) -> FillFn:
    """A FillFn that runs a local teacher over packed batches of ~batch_tokens tokens."""
    from stillhouse.plugins.students.batching import Collator
    from stillhouse.plugins.students.teacher import forward, topk_at_targets

    def fill(samples: list[TokenizedSample], write: Callable[[TokenizedSample, np.ndarray, np.ndarray], None]) -> None:
        groups = length_groups([len(s.input_ids) for s in samples], batch_tokens)
        collator = Collator(pad_id=pad_id, max_length=batch_tokens, packing=True)
        done = 0
        for group in groups:
            members = [samples[i] for i in group]
            batch = collator([s.as_item() for s in members])
            out = forward(model, batch)
            top_ids_t, top_lps_t = topk_at_targets(out.logits, batch["target_ids"], k, vocab_size)
            top_ids, top_lps = top_ids_t.cpu().numpy(), top_lps_t.cpu().numpy()
            # Target rows come out row-major: rows in layout order, samples by cursor within a row.
            cursor = 0
            for row in collator.layout([len(s.input_ids) for s in members]):
                for j in row:
                    n = members[j].n_targets
                    write(members[j], top_ids[cursor : cursor + n], top_lps[cursor : cursor + n])
                    cursor += n
            done += len(group)
            if on_progress:
                on_progress(done, len(samples))

    return fill
