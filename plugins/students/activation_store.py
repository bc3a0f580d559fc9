"""The teacher's activations for ``hidden_mse`` / ``hidden_cosine`` / ``attention_relation``,
computed once and kept in the run folder (``teacher_activations/<address>/``), like the top-k store.

**What is stored.** A loss names the teacher tensors it reads (:func:`teacher_tensors`):

- ``hidden.<i>``: hidden-state index ``i`` (0 = embeddings, i = output of block i), at the *target*
  positions only (the hidden losses compare target positions and nothing else);
- ``qkv.<block>.<q_proj|k_proj|v_proj>``: the attention inputs of a teacher block, at *every*
  position (a relation row attends to the prompt's keys too).

Each tensor is one float16 ``[rows, width]`` memory-mapped file, samples back to back; ``index.json``
holds the teacher, the tensor names and widths, and where each sample (by the content hash of its
token ids, :meth:`TokenizedSample.key`) starts. The folder's name is a hash of the teacher and the
tensor names, so another layer map gets a store of its own and a resumed run reuses its store while
it covers every sample. Written into ``<address>.partial`` and renamed when complete.

Size per token: 2 bytes x width per stored tensor (SmolLM2-135M, 10 layers of 576 at the targets:
11.5 KB per target token; the last block's Q/K/V, 576 + 192 + 192 wide: 1.9 KB per token).

**Reading.** :class:`~stillhouse.plugins.students.batching.Collator` lays the rows out like the
batch (packed or padded, zeros elsewhere) under ``teacher_activations``; :func:`apply_stored` hands
them to the loss: hidden states as :class:`SparseHidden` (``LossInputs.teacher_hidden[i]``), Q/K/V
as the values of the loss's teacher capture. The teacher's float32 activations are rounded to
float16 (relative error about 1e-3); ``student.teacher_activations = "live"`` runs the teacher on
every batch instead.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from stillhouse.kernel.interfaces import IGNORE_INDEX
from stillhouse.plugins.students.data import TokenizedSample

if TYPE_CHECKING:  # pragma: no cover - typing only
    import torch

STORE_DIR = "teacher_activations"
FORMAT = 1
TARGETS, ALL = "targets", "all"


def teacher_tensors(loss: Any, teacher_blocks: int) -> dict[str, str]:
    """The teacher tensors a *prepared* hidden/attention loss reads: name -> rows (``targets``/``all``)."""
    names: dict[str, str] = {}
    for _, t in getattr(loss, "pairs", None) or []:
        if hasattr(loss, "teacher_capture"):  # attention_relation: block indices, Q/K/V at every position
            for projection in ("q_proj", "k_proj", "v_proj"):
                names[f"qkv.{t % teacher_blocks}.{projection}"] = ALL
        else:  # hidden_mse / hidden_cosine: hidden-state indices (blocks + 1 of them)
            names[f"hidden.{t % (teacher_blocks + 1)}"] = TARGETS
    return names


def store_address(teacher: str, names: dict[str, str]) -> str:
    digest = hashlib.sha1(json.dumps([teacher, sorted(names.items())]).encode())
    return digest.hexdigest()[:16]


class ActivationStore:
    """Read side: a sample's rows of every stored tensor."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.meta = json.loads((self.path / "index.json").read_text())
        self.arrays = {
            name: np.memmap(
                self.path / f"{name}.bin", dtype=np.float16, mode="r", shape=(max(self.meta["rows"][kind], 1), width)
            )
            for name, (kind, width) in self.meta["names"].items()
        }

    @property
    def names(self) -> dict[str, str]:
        return {name: kind for name, (kind, _) in self.meta["names"].items()}

    def width(self, name: str) -> int:
        return int(self.meta["names"][name][1])

    def covers(self, samples: Sequence[TokenizedSample]) -> bool:
        return all(s.key() in self.meta["offsets"] for s in samples)

    def rows(self, key: str, name: str, count: int) -> np.ndarray:
        kind = self.meta["names"][name][0]
        start = self.meta["offsets"][key][0 if kind == TARGETS else 1]
        return np.asarray(self.arrays[name][start : start + count])

    def nbytes(self) -> int:
        return sum(p.stat().st_size for p in self.path.iterdir() if p.is_file())


def open_activation_store(
    run_dir: Path, samples: Sequence[TokenizedSample], *, teacher: str, names: dict[str, str]
) -> ActivationStore | None:
    path = Path(run_dir) / STORE_DIR / store_address(teacher, names)
    if not (path / "index.json").exists():
        return None
    try:
        store = ActivationStore(path)
    except (OSError, ValueError, KeyError):
        return None  # damaged: rebuild
    return store if store.covers(samples) else None


def target_positions(sample: TokenizedSample) -> np.ndarray:
    return np.flatnonzero(np.asarray(sample.targets) != IGNORE_INDEX)


def teacher_outputs(model: Any, batch: dict[str, Any], names: dict[str, str]) -> dict[str, torch.Tensor]:
    """One teacher forward on a collated batch: each named tensor as [R, W, width] (no gradients)."""
    from stillhouse.plugins.losses.attention import Capture
    from stillhouse.plugins.students.teacher import forward

    blocks = sorted({int(n.split(".")[1]) for n in names if n.startswith("qkv.")})
    capture = Capture(model, blocks) if blocks else None
    try:
        out = forward(model, batch, hidden=any(n.startswith("hidden.") for n in names))
    finally:
        if capture is not None:
            capture.remove()
    result = {}
    for name in names:
        kind, *where = name.split(".")
        if kind == "hidden":
            result[name] = out.hidden_states[int(where[0])]
        else:
            assert capture is not None
            result[name] = capture.values[(int(where[0]), where[1])]
    return result


def tensor_width(model: Any, name: str) -> int:
    """The width of a named teacher tensor, read from the model (no forward)."""
    kind, *where = name.split(".")
    if kind == "hidden":
        return int(model.config.hidden_size)
    from stillhouse.plugins.losses.attention import attention_blocks

    return int(getattr(attention_blocks(model)[int(where[0])].self_attn, where[1]).out_features)


def estimated_nbytes(samples: Sequence[TokenizedSample], model: Any, names: dict[str, str]) -> int:
    """What :func:`write_activation_store` would write for these samples (float16, unique samples)."""
    unique = list({s.key(): s for s in samples}.values())
    rows = {TARGETS: sum(s.n_targets for s in unique), ALL: sum(len(s.input_ids) for s in unique)}
    return sum(2 * rows[kind] * tensor_width(model, name) for name, kind in names.items())


def write_activation_store(
    run_dir: Path,
    samples: Sequence[TokenizedSample],
    model: Any,
    *,
    teacher: str,
    names: dict[str, str],
    pad_id: int,
    batch_tokens: int,
) -> ActivationStore:
    """Run the teacher once over the unique samples (packed batches of ~batch_tokens) and publish the store."""
    from stillhouse.plugins.students.batching import Collator
    from stillhouse.plugins.students.teacher_store import length_groups

    final = Path(run_dir) / STORE_DIR / store_address(teacher, names)
    partial = final.with_name(final.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    unique = list({s.key(): s for s in samples}.values())
    offsets: dict[str, tuple[int, int]] = {}
    rows = {TARGETS: 0, ALL: 0}
    for sample in unique:
        offsets[sample.key()] = (rows[TARGETS], rows[ALL])
        rows[TARGETS] += sample.n_targets
        rows[ALL] += len(sample.input_ids)
    collator = Collator(pad_id=pad_id, max_length=batch_tokens, packing=True)
    arrays: dict[str, np.memmap] = {}
    widths: dict[str, int] = {}
    for group in length_groups([len(s.input_ids) for s in unique], batch_tokens):
        members = [unique[i] for i in group]
        outputs = teacher_outputs(model, collator([s.as_item() for s in members]), names)
        for name, value in outputs.items():
            if name not in arrays:
                widths[name] = int(value.shape[-1])
                shape = (max(rows[names[name]], 1), widths[name])
                arrays[name] = np.memmap(partial / f"{name}.bin", dtype=np.float16, mode="w+", shape=shape)
            values = value.detach().float().cpu().numpy()
            for r, cursor, j in _placements(collator, members):
                sample = members[j]
                start = offsets[sample.key()][0 if names[name] == TARGETS else 1]
                span = cursor + (target_positions(sample) if names[name] == TARGETS else np.arange(len(sample.input_ids)))
                arrays[name][start : start + len(span)] = values[r, span].astype(np.float16)
    for array in arrays.values():
        array.flush()
    meta = {
        "format": FORMAT,
        "teacher": teacher,
        "names": {name: [names[name], widths[name]] for name in arrays},
        "rows": rows,
        "offsets": offsets,
    }
    (partial / "index.json").write_text(json.dumps(meta))
    shutil.rmtree(final, ignore_errors=True)
    os.replace(partial, final)
    return ActivationStore(final)


def _placements(collator: Any, members: Sequence[TokenizedSample]) -> Iterator[tuple[int, int, int]]:
    """(row, start column, member index) of every sample in the collator's layout."""
    for r, row in enumerate(collator.layout([len(s.input_ids) for s in members])):
        cursor = 0
        for j in row:
            yield r, cursor, j
            cursor += len(members[j].input_ids)


class SparseHidden(Sequence["torch.Tensor"]):
    """``LossInputs.teacher_hidden`` from a store: the stored indices of ``count`` hidden states."""

    def __init__(self, states: dict[int, torch.Tensor], count: int) -> None:
        self.states = states
        self.size = count

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: Any) -> Any:
        if not isinstance(index, int):
            raise TypeError("stored teacher hidden states are read one index at a time")
        key = index % self.size
        if key not in self.states:
            raise KeyError(f"teacher hidden state {index} was not stored (stored: {sorted(self.states)})")
        return self.states[key]


def apply_stored(loss: Any, tensors: dict[str, torch.Tensor], teacher_blocks: int) -> SparseHidden | None:
    """Hand a batch's stored tensors to the loss: Q/K/V into its teacher capture, hidden states returned."""
    qkv = {(int(n.split(".")[1]), n.split(".")[2]): v for n, v in tensors.items() if n.startswith("qkv.")}
    if qkv:
        loss.teacher_capture.values = qkv
    hidden = {int(n.split(".")[1]): v for n, v in tensors.items() if n.startswith("hidden.")}
    return SparseHidden(hidden, teacher_blocks + 1) if hidden else None
