"""Batches of variable-length samples: packed rows without cross-sample attention, or padded rows.

**Packing.** A micro-batch's samples are placed into rows of at most ``max_length`` tokens, as few
rows as a greedy pass finds, with balanced loads (see :func:`pack_rows`). ``position_ids`` restart at 0 for every sample and no 2-D attention mask is
passed: transformers (>= 4.5x, all attention kernels including sdpa/eager on CPU) then detects the
packed format from the position resets and builds a block-diagonal causal mask
(``masking_utils.find_packed_sequence_indices``; flash-attention uses the same positions for its
varlen kernel), so a token attends only to earlier tokens of its own sample. Rotary positions
restart too, so a packed sample computes exactly what it computes alone. Padding at the end of a row
is its own segment, targets -100. The number of samples per step stays ``batch_size`` (the learning
rate schedule and epochs mean the same with and without packing); packing removes the padding.

**Padding** (``packing = false``): right-padded rows with an attention mask, as a plain Trainer does.

Either way the batch carries ``n_real`` and ``n_positions`` so the trainer can report padding waste.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from stillhouse.kernel.interfaces import IGNORE_INDEX

if TYPE_CHECKING:  # pragma: no cover - typing only
    from stillhouse.plugins.students.activation_store import ActivationStore
    from stillhouse.plugins.students.teacher_store import TopKStore


def pack_rows(lengths: Sequence[int], capacity: int) -> list[list[int]]:
    """Indices grouped into as few rows of total length <= capacity as a greedy pass finds, with the
    rows' loads balanced (longest item first onto the least-loaded row) so that padding every row to
    the longest one wastes little. An item longer than capacity gets a row of its own. Within a row,
    items keep ascending index order."""
    if not lengths:
        return []
    order = sorted(range(len(lengths)), key=lambda j: -lengths[j])
    n_rows = max(1, -(-sum(min(n, capacity) for n in lengths) // capacity))
    while True:
        rows: list[list[int]] = [[] for _ in range(n_rows)]
        loads = [0] * n_rows
        for i in order:
            r = min(range(n_rows), key=loads.__getitem__)
            if rows[r] and loads[r] + lengths[i] > capacity:
                break  # does not fit anywhere: one more row and start over
            rows[r].append(i)
            loads[r] += lengths[i]
        else:
            return [sorted(row) for row in rows if row]
        n_rows += 1


def _round_up(n: int, multiple: int | None) -> int:
    return n if not multiple else -(-n // multiple) * multiple


@dataclass
class Collator:
    """Builds model inputs from dataset items ``{input_ids, targets, weight[, topk_offset][, sample_key]}``.

    With ``activations`` (and items carrying their ``sample_key``) the batch also holds
    ``teacher_activations``: each stored teacher tensor as [rows, width, D] float16, laid out like the
    tokens (zeros at positions the store has no row for)."""

    pad_id: int
    max_length: int
    packing: bool = True
    store: TopKStore | None = None
    pad_to_multiple_of: int | None = None
    activations: ActivationStore | None = None

    def layout(self, lengths: Sequence[int]) -> list[list[int]]:
        return pack_rows(lengths, self.max_length) if self.packing else [[i] for i in range(len(lengths))]

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        import torch

        lengths = [len(f["input_ids"]) for f in features]
        rows = self.layout(lengths)
        width = _round_up(max(sum(lengths[i] for i in row) for row in rows), self.pad_to_multiple_of)
        n_rows = len(rows)
        input_ids = np.full((n_rows, width), self.pad_id, dtype=np.int64)
        positions = np.zeros((n_rows, width), dtype=np.int64)
        targets = np.full((n_rows, width), IGNORE_INDEX, dtype=np.int64)
        weights = np.zeros((n_rows, width), dtype=np.float32)
        real = np.zeros((n_rows, width), dtype=bool)
        store = self.store
        acts = None
        if self.activations is not None:
            acts = {
                name: np.zeros((n_rows, width, self.activations.width(name)), dtype=np.float16)
                for name in self.activations.names
            }
        if store is not None:
            t_ids = np.full((n_rows, width, store.k), -1, dtype=np.int32)
            t_lps = np.full((n_rows, width, store.k), -np.inf, dtype=np.float16)
        for r, row in enumerate(rows):
            cursor = 0
            for i in row:
                f, n = features[i], lengths[i]
                span = slice(cursor, cursor + n)
                input_ids[r, span] = f["input_ids"]
                positions[r, span] = np.arange(n)
                targets[r, span] = f["targets"]
                weights[r, span] = f.get("weight", 1.0)
                real[r, span] = True
                offset = f.get("topk_offset", -1)
                if store is not None and offset >= 0:
                    where = cursor + np.flatnonzero(np.asarray(f["targets"]) != IGNORE_INDEX)
                    ids, lps = store.rows(offset, len(where))
                    t_ids[r, where] = ids
                    t_lps[r, where] = lps
                if acts is not None and "sample_key" in f:
                    self._place_activations(acts, f, r, cursor)
                cursor += n
            # Padding restarts positions: a segment of its own, never attended by a sample.
            positions[r, cursor:] = np.arange(width - cursor)
        batch: dict[str, Any] = {
            "input_ids": torch.from_numpy(input_ids),
            "position_ids": torch.from_numpy(positions),
            "target_ids": torch.from_numpy(targets),
            "weights": torch.from_numpy(weights),
            "n_real": torch.tensor(sum(lengths)),
            "n_positions": torch.tensor(n_rows * width),
        }
        if not self.packing:
            batch["attention_mask"] = torch.from_numpy(real.astype(np.int64))
        if store is not None:
            batch["teacher_ids"] = torch.from_numpy(t_ids)
            batch["teacher_logprobs"] = torch.from_numpy(t_lps)
        if acts is not None:
            batch["teacher_activations"] = {name: torch.from_numpy(a) for name, a in acts.items()}
        return batch

    def _place_activations(self, acts: dict[str, np.ndarray], feature: dict[str, Any], row: int, cursor: int) -> None:
        assert self.activations is not None
        targets = np.asarray(feature["targets"])
        for name, kind in self.activations.names.items():
            span = np.flatnonzero(targets != IGNORE_INDEX) if kind == "targets" else np.arange(len(targets))
            acts[name][row, cursor + span] = self.activations.rows(feature["sample_key"], name, len(span))
