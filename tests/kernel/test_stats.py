"""Medians with distribution-free intervals."""

from __future__ import annotations

import random

from stillhouse.kernel.stats import median_ci, overlap, ratio_interval, summarize


def test_the_median_interval_brackets_the_median_and_narrows_with_n() -> None:
    rng = random.Random(0)
    small = [rng.lognormvariate(0, 0.3) for _ in range(12)]
    large = [rng.lognormvariate(0, 0.3) for _ in range(400)]
    for values in (small, large):
        s = summarize(values)
        assert s.low <= s.median <= s.high and s.q1 <= s.median <= s.q3 and s.n == len(values)
    assert summarize(large).rel_half_width < summarize(small).rel_half_width / 2


def test_the_interval_covers_the_true_median_about_95_percent_of_the_time() -> None:
    rng = random.Random(1)
    hits = 0
    for _ in range(400):
        low, high = median_ci([rng.expovariate(1.0) for _ in range(30)])
        hits += low <= 0.6931 <= high  # the exponential's median is ln 2
    assert 0.92 <= hits / 400 <= 0.995


def test_few_values_give_the_full_range() -> None:
    assert median_ci([3.0, 1.0, 2.0]) == (1.0, 3.0)


def test_overlap_and_ratio_interval() -> None:
    assert overlap((1, 2), (2, 3)) and not overlap((1, 2), (2.5, 3))
    assert ratio_interval((4, 6), (1, 2)) == (2, 6)
    assert ratio_interval((4, 6), (0, 2)) is None
