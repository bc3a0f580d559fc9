"""Several teachers' top-k log-probs combined into one target distribution per position.

With ``[[teachers]]`` and a logit loss, each teacher whose stored completion aligns with a sample's
target (:func:`stillhouse.plugins.students.api_logprobs.align_sample`) gives a top-k per target
position; here they become one: the weighted average of the teachers' probabilities (a token
outside a teacher's top-k counts 0 for it), over the teachers that have that position, cut to the
k most likely tokens and renormalised over them. A teacher whose answer differs from the target has
no aligned completion and takes no part.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

Aligned = tuple[np.ndarray, np.ndarray]
"""[n_targets, k] token ids (-1: empty slot) and log-probs (-inf there)."""


def combine_topk(parts: Sequence[tuple[float, Aligned]], k: int) -> Aligned:
    """One [n, k] top-k out of several teachers' (weight, (ids, log-probs))."""
    n = parts[0][1][0].shape[0]
    ids_out = np.full((n, k), -1, dtype=np.int64)
    lps_out = np.full((n, k), -np.inf, dtype=np.float32)
    for row in range(n):
        mass: dict[int, float] = {}
        total_weight = 0.0
        for weight, (ids, lps) in parts:
            slots = [(int(i), float(lp)) for i, lp in zip(ids[row], lps[row], strict=True) if i >= 0]
            if not slots:
                continue  # this teacher has no distribution at this position
            total_weight += weight
            for token, lp in slots:
                mass[token] = mass.get(token, 0.0) + weight * float(np.exp(lp))
        if not mass or total_weight <= 0:
            continue
        best = sorted(mass.items(), key=lambda item: -item[1])[:k]
        norm = sum(p for _, p in best)
        for slot, (token, p) in enumerate(best):
            ids_out[row, slot] = token
            lps_out[row, slot] = np.log(p / norm)
    return ids_out, lps_out
