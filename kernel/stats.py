"""Small, dependency-free statistics for measurements: medians with a distribution-free confidence
interval, and whether two such intervals let us say which of two numbers is larger.

Timings on a shared machine are skewed and heavy-tailed (a background job makes a few requests
several times slower), so a mean ± standard deviation misleads. The median's 95% interval from
order statistics (the binomial method: ranks n/2 ∓ 1.96·√n/2) assumes nothing about the shape.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

Z95 = 1.959963984540054


@dataclass(frozen=True)
class Summary:
    """Median of ``n`` values with its 95% CI (``low``..``high``) and interquartile range."""

    median: float
    low: float
    high: float
    q1: float
    q3: float
    n: int

    @property
    def rel_half_width(self) -> float:
        """Half the CI's width relative to the median (inf for a zero median)."""
        return (self.high - self.low) / 2 / self.median if self.median else math.inf


def _quantile(ordered: Sequence[float], q: float) -> float:
    """Linear-interpolated quantile of already sorted values."""
    pos = q * (len(ordered) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def median_ci(values: Sequence[float]) -> tuple[float, float]:
    """95% distribution-free CI of the median: the order statistics at ranks n/2 ∓ 1.96·√n/2.

    With fewer than 6 values no pair of ranks reaches 95% coverage; the full range is returned,
    which is then wider than, never narrower than, what the data supports."""
    ordered = sorted(values)
    n = len(ordered)
    if n == 0:
        raise ValueError("no values")
    half = Z95 * math.sqrt(n) / 2
    lower = max(1, math.floor(n / 2 - half))  # 1-based ranks
    upper = min(n, math.ceil(n / 2 + half) + 1)
    return ordered[lower - 1], ordered[upper - 1]


def summarize(values: Sequence[float]) -> Summary:
    ordered = sorted(float(v) for v in values)
    if not ordered:
        raise ValueError("no values")
    low, high = median_ci(ordered)
    return Summary(_quantile(ordered, 0.5), low, high, _quantile(ordered, 0.25), _quantile(ordered, 0.75), len(ordered))


def overlap(a: tuple[float, float], b: tuple[float, float]) -> bool:
    """True when the intervals ``a`` and ``b`` share a point: the data cannot order the two."""
    return a[0] <= b[1] and b[0] <= a[1]


def ratio_interval(num: tuple[float, float], den: tuple[float, float]) -> tuple[float, float] | None:
    """The range of num/den over both intervals (positive values); None when den reaches 0."""
    if den[0] <= 0:
        return None
    return num[0] / den[1], num[1] / den[0]


__all__ = ["Summary", "median_ci", "overlap", "ratio_interval", "summarize"]
