"""What a loss plugin receives for one batch: :class:`LossInputs`.

Every tensor is aligned to *prediction positions*: ``logits[b, t]`` is the student's prediction for
the token ``labels[b, t]`` (the trainer has already shifted inputs by one, per sample, so a packed
row never predicts the first token of the next sample). ``labels == -100`` marks positions that
carry no loss: prompt tokens, padding, the last token of each sample.

Teacher signals, when present, sit on the same positions:

- ``teacher_ids[b, t, :]``: the teacher's top-k token ids for that prediction (``-1`` = no
  alternative in this slot, e.g. an API teacher returned fewer than k, or a token not in the
  student's vocabulary);
- ``teacher_logprobs[b, t, :]``: their log-probabilities, log-softmax at temperature 1 over the
  teacher's *full* vocabulary (so they sum to at most 1 in probability space), ``-inf`` where the
  id is ``-1``. A position whose slots are all ``-1`` has no teacher signal: only cross-entropy
  applies there.
- ``student_hidden`` / ``teacher_hidden``: the models' hidden-state tuples (embeddings, then one
  tensor per layer, ``[B, L, D]`` each), as transformers returns them with
  ``output_hidden_states=True``.

This module imports no torch at runtime; tensors are annotated by name only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover - typing only
    import torch

IGNORE_INDEX = -100
"""Label value of positions without loss (the transformers convention)."""


@dataclass
class LossInputs:
    """One batch as the loss sees it (shapes: B rows, L positions, V vocabulary, k teacher slots)."""

    logits: torch.Tensor
    """[B, L, V] student logits; ``logits[b, t]`` predicts ``labels[b, t]``."""
    labels: torch.Tensor
    """[B, L] target token ids, ``-100`` where there is no loss."""
    teacher_ids: torch.Tensor | None = None
    """[B, L, k] int: teacher top-k token ids, ``-1`` for an empty slot."""
    teacher_logprobs: torch.Tensor | None = None
    """[B, L, k] float: teacher log-probs of ``teacher_ids`` (T = 1, full-vocabulary softmax)."""
    student_hidden: Sequence[torch.Tensor] | None = None
    """Student hidden states: embeddings output, then each layer, [B, L, D_s] each."""
    teacher_hidden: Sequence[torch.Tensor] | None = None
    """Teacher hidden states on the same token sequence, [B, L, D_t] each."""
    weights: torch.Tensor | None = None
    """[B, L] per-position weight (the TrainPair weight of the sample the position belongs to)."""
    num_items: float | torch.Tensor | None = None
    """Divide the weighted token sum by this instead of this batch's target count: the trainer passes
    the number of target tokens in the whole accumulated (and, across processes, gathered) batch, so
    every token counts the same whatever the packing or the gradient accumulation."""

    @property
    def mask(self) -> torch.Tensor:
        """[B, L] bool: positions that carry loss."""
        return self.labels != IGNORE_INDEX
