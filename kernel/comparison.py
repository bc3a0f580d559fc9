"""The comparison table: teacher vs baseline student vs distilled student, and the ratios between them.

Pure Python on :class:`Metric` lists (no torch, no rich): the evaluate stage produces ``{role:
[Metric]}``, this module turns it into rows of cells that the Markdown, HTML and terminal reports
render, and the model card repeats. A cell whose number could not be measured keeps ``value`` None
and the reason; a ratio against a missing (or zero) number is missing too, with the reason, so a
report never shows an invented 0.

Ratios of the distilled student against a reference model (teacher or baseline):

- size ratio       reference parameters / distilled parameters ("× smaller")
- memory reduction (1 - distilled / reference) × 100 %
- latency reduction (1 - distilled p50 / reference p50) × 100 %   (old runs: sequential single requests)
- speed            reference / distilled interleaved median ("× faster"), shown with the range its 95%
                   intervals allow, or "not significant" when the two intervals overlap
- throughput       distilled tokens/s / reference tokens/s ("×")
- retention        distilled primary metric / teacher primary metric × 100 %   (vs teacher)
  improvement      distilled - baseline primary metric, in points (× 100)     (vs baseline)
- cost reduction   (1 - distilled / reference cost per 1k requests) × 100 %
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from stillhouse.kernel.interfaces import Metric
from stillhouse.kernel.stats import overlap, ratio_interval

MISSING = "—"

ROLE_LABELS: dict[str, str] = {
    "teacher": "teacher",
    "baseline": "baseline student (before distillation)",
    "student": "distilled student",
    "model": "model",
}

ROLES = ("teacher", "baseline", "student")

EXPORTED_PREFIX = "student-"
"""The results of ``evaluate.export = ["gguf:q8_0"]`` are stored under the role ``student-gguf-q8_0``:
the distilled student as exported, evaluated like the other roles (its own row in the reports)."""


def exported_role(spec: str) -> str:
    """``"gguf:q8_0"`` -> ``"student-gguf-q8_0"`` (a role name that is also a file name)."""
    return EXPORTED_PREFIX + spec.replace(":", "-")


def is_exported_role(role: str) -> bool:
    return role.startswith(EXPORTED_PREFIX)


def role_label(role: str) -> str:
    """How a report names a role: ``student-gguf-q8_0`` -> "distilled, q8_0 GGUF"."""
    if role in ROLE_LABELS:
        return ROLE_LABELS[role]
    if is_exported_role(role):
        fmt, _, quantize = role[len(EXPORTED_PREFIX) :].partition("-")
        return f"distilled, {quantize + ' ' if quantize else ''}{fmt.upper()}"
    return role


@dataclass(frozen=True)
class Column:
    """A table column: ``metrics`` are the metric names that can fill it, in order of preference."""

    key: str
    title: str
    metrics: tuple[str, ...]


@dataclass
class Cell:
    """One table cell. ``value`` None means missing and ``reason`` says why."""

    value: float | None
    text: str
    reason: str | None = None
    n: int | None = None
    metric: str | None = None
    low: float | None = None
    high: float | None = None

    @property
    def missing(self) -> bool:
        return self.value is None


@dataclass
class Row:
    key: str
    label: str
    cells: dict[str, Cell] = field(default_factory=dict)


@dataclass
class Comparison:
    primary_metric: str
    columns: list[Column]
    rows: list[Row]
    ratios: list[Row]

    def row(self, key: str) -> Row:
        for row in (*self.rows, *self.ratios):
            if row.key == key:
                return row
        raise KeyError(key)

    def notes(self) -> list[tuple[str, str, str]]:
        """(row label, column title, reason) for every missing cell, in table order."""
        titles = {c.key: c.title for c in self.columns}
        return [
            (row.label, titles[key], cell.reason or "not measured")
            for row in (*self.rows, *self.ratios)
            for key, cell in row.cells.items()
            if cell.missing
        ]

    def to_dict(self) -> dict[str, Any]:
        return {
            "primary_metric": self.primary_metric,
            "columns": [asdict(c) for c in self.columns],
            "rows": [asdict(r) for r in self.rows],
            "ratios": [asdict(r) for r in self.ratios],
        }


def columns_for(primary_metric: str, *, disk: bool = False) -> list[Column]:
    """The table's columns; ``disk`` adds "size on disk" (shown when an exported student is compared)."""
    return [
        Column("parameters", "parameters", ("parameters",)),
        *([Column("disk", "size on disk", ("bytes_on_disk",))] if disk else []),
        # The weights as loaded (parameters × dtype size) where known; older runs: GPU memory when
        # the model ran on a GPU, else the process RSS peak (mostly the runtime, not the model).
        Column("memory", "memory", ("weights_bytes", "gpu_peak_memory_bytes", "peak_memory_bytes")),
        # Interleaved, forced-length timing (kernel.timing); single-request p50 for older runs.
        Column("latency", "latency / request", ("request_latency_ms", "latency_p50_ms")),
        Column("throughput", "throughput", ("throughput_tokens_per_s",)),
        Column("task", primary_metric, (primary_metric,)),
        Column("cost", "cost / 1k requests", ("cost_per_1k_requests_usd",)),
    ]


# -- formatting ---------------------------------------------------------------------------------

_COUNT_SUFFIXES = (("T", 1e12), ("B", 1e9), ("M", 1e6), ("K", 1e3))
_COUNT_RE = re.compile(r"^\s*([0-9][0-9_,]*(?:\.[0-9]+)?)\s*([kKmMbBtT]?)\s*$")


def parse_count(text: str | int | float) -> float:
    """``"671B"`` -> 6.71e11, ``"135M"``, ``"1.5T"``, ``"350k"``, ``"1,000"``, or a number.

    Raises ValueError for anything else, so a typo is reported rather than read as 0.
    """
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        return float(text)
    match = _COUNT_RE.match(str(text))
    if not match:
        raise ValueError(f"not a count: {text!r} (expected e.g. 671B, 135M, 1.5T)")
    number = float(match.group(1).replace(",", "").replace("_", ""))
    scale = dict(_COUNT_SUFFIXES).get(match.group(2).upper(), 1.0)
    return number * scale


def format_count(value: float) -> str:
    for suffix, scale in _COUNT_SUFFIXES:
        if abs(value) >= scale:
            return f"{_sig(value / scale)}{suffix}"
    return f"{value:.0f}"


def format_bytes(value: float) -> str:
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if abs(value) >= scale:
            return f"{value / scale:.1f} {unit}"
    return f"{value:.0f} B"


def format_usd(value: float) -> str:
    if value == 0:
        return "$0"
    return f"${_sig(value, 3)}" if abs(value) < 1 else f"${value:,.2f}"


def _sig(value: float, digits: int = 3) -> str:
    """``value`` to ``digits`` significant digits, without exponent notation for usual sizes."""
    if value == 0:
        return "0"
    decimals = max(0, digits - 1 - int(math.floor(math.log10(abs(value)))))
    return f"{value:.{decimals}f}"


def format_metric(name: str, value: float | None) -> str:
    """A metric value as a person reads it, by its name's convention."""
    if value is None:
        return MISSING
    if name == "parameters":
        return format_count(value)
    if name.endswith("_bytes") or name.startswith("bytes_"):
        return format_bytes(value)
    if name == "decode_ms_per_token":
        return f"{_sig(value)} ms/token"
    if name.endswith("_ms"):
        return f"{value:,.0f} ms" if value >= 10 else f"{value:.2f} ms"
    if name.startswith("cost_"):
        return format_usd(value)
    if name == "throughput_tokens_per_s":
        return f"{_sig(value)} tok/s"
    if name == "requests_per_s":
        return f"{_sig(value)} req/s"
    return f"{value:.3f}"


def format_interval(name: str, low: float, high: float) -> str:
    """``[420–500]``: an interval in the value's unit, which the value beside it already names."""
    return f"[{format_metric(name, low).split(' ')[0]}–{format_metric(name, high).split(' ')[0]}]"


# -- building -----------------------------------------------------------------------------------


def _index(metrics: Sequence[Metric]) -> dict[str, Metric]:
    # A later metric of the same name wins: an evaluator may refine an earlier one.
    return {m.name: m for m in metrics}


def _value_cell(column: Column, metrics: dict[str, Metric] | None, role_reason: str) -> Cell:
    if metrics is None:
        return Cell(None, MISSING, role_reason)
    reasons = []
    for name in column.metrics:
        metric = metrics.get(name)
        if metric is None:
            continue
        if metric.value is not None and math.isfinite(metric.value):
            text = format_metric(name, metric.value)
            if column.key == "latency":
                p95 = metrics.get("latency_p95_ms")
                if p95 is not None and p95.value is not None:
                    text += f" (p95 {format_metric('latency_p95_ms', p95.value)})"
            if metric.low is not None and metric.high is not None:
                text += f" {format_interval(name, metric.low, metric.high)}"
            if column.key in ("task", "latency", "decode") and metric.n:
                text += f" (n={metric.n})"
            return Cell(metric.value, text, None, metric.n, name, metric.low, metric.high)
        reasons.append(metric.reason or "not measured")
    return Cell(None, MISSING, reasons[0] if reasons else "not measured")


def retention(distilled: float | None, teacher: float | None) -> float | None:
    """The distilled student's primary metric as a share of the teacher's (1.0 = 100 %); None when
    either is missing or the teacher scored 0.

    The one definition of retention. The registry's ``run_summary.retention_pct`` view
    (registry/migrations/0002_views.sql) is SQL and cannot call this, so it spells the same formula,
    ``100.0 * student_score / nullif(teacher_score, 0)``; tests/registry/test_retention.py checks the
    two agree."""
    if distilled is None or teacher is None or teacher == 0:
        return None
    return distilled / teacher


def _ratio_cell(column: Column, kind: str, distilled: Cell, reference: Cell, ref_label: str, dist_label: str) -> Cell:
    """One ratio cell: ``kind`` is size | reduction | times | retention | delta."""
    if reference.missing or distilled.missing:
        side, cell = (ref_label, reference) if reference.missing else (dist_label, distilled)
        return Cell(None, MISSING, f"{side} {column.title} missing: {cell.reason or 'not measured'}")
    if reference.metric != distilled.metric:
        return Cell(
            None,
            MISSING,
            f"not comparable: {ref_label} {reference.metric} vs {dist_label} {distilled.metric}",
        )
    d, r = distilled.value, reference.value
    assert d is not None and r is not None  # neither is missing (checked above)
    d, r = float(d), float(r)
    n = min(distilled.n or 0, reference.n or 0) or None
    d_low, d_high, r_low, r_high = distilled.low, distilled.high, reference.low, reference.high
    if kind == "reduction" and d_low is not None and d_high is not None and r_low is not None and r_high is not None:
        return _speed_cell((float(d_low), float(d_high)), (float(r_low), float(r_high)), d, r, n)
    if kind == "delta":
        value = d - r
        return Cell(value, f"{value * 100:+.1f} pts", None, n, distilled.metric)
    zero_side = ref_label if r == 0 else dist_label if kind == "size" and d == 0 else None
    if zero_side:
        return Cell(None, MISSING, f"{zero_side} {column.title} is 0: no ratio")
    if kind == "size":
        value = r / d
        if round(value, 2) == 1:
            return Cell(value, "same size", None, n)
        return Cell(value, f"{_sig(value)}× smaller" if value > 1 else f"{_sig(1 / value)}× larger", None, n)
    if kind == "reduction":
        value = (1 - d / r) * 100
        less, more = _REDUCTION_WORDS[column.key]
        return Cell(value, f"{abs(value):.1f}% {less if value >= 0 else more}", None, n)
    if kind == "times":
        value = d / r
        return Cell(value, f"{_sig(value)}×", None, n)
    share = retention(d, r)
    assert share is not None  # a reference of 0 was answered above
    value = share * 100
    return Cell(value, f"{value:.1f}% retained", None, n, distilled.metric)


def _speed_cell(dist: tuple[float, float], ref: tuple[float, float], d: float, r: float, n: int | None) -> Cell:
    """Reference time / distilled time from two medians with their 95% intervals. The intervals
    overlap: "not significant", with the range the data allows. Else the ratio to two significant
    digits and its range, never more digits than the intervals support."""
    ratio = r / d
    span = ratio_interval(ref, dist)
    if span is None:
        return Cell(None, MISSING, "an interval reaches 0: no ratio")
    lo, hi = span
    if overlap(dist, ref):
        return Cell(ratio, f"not significant ({_sig(lo, 2)}–{_sig(hi, 2)}×)", None, n, low=lo, high=hi)
    if ratio >= 1:
        return Cell(ratio, f"{_sig(ratio, 2)}× faster ({_sig(lo, 2)}–{_sig(hi, 2)}×)", None, n, low=lo, high=hi)
    return Cell(ratio, f"{_sig(1 / ratio, 2)}× slower ({_sig(1 / hi, 2)}–{_sig(1 / lo, 2)}×)", None, n, low=lo, high=hi)


# How a reduction reads in each column, for a positive and a negative value.
_REDUCTION_WORDS = {
    "memory": ("less", "more"),
    "latency": ("lower", "higher"),
    "decode": ("lower", "higher"),
    "cost": ("cheaper", "dearer"),
}


_VS_TEACHER = {
    "parameters": "size",
    "disk": "size",
    "memory": "reduction",
    "latency": "reduction",
    "decode": "reduction",
    "throughput": "times",
    "task": "retention",
    "cost": "reduction",
}
_VS_BASELINE = {**_VS_TEACHER, "task": "delta"}
# An exported student against the distilled student it came from: the task metric's change in
# points is what quantization cost; the size on disk what it saved.
_VS_DISTILLED = _VS_BASELINE


def build_comparison(
    results: Mapping[str, Sequence[Metric]],
    primary_metric: str,
    *,
    roles: Sequence[str] = ROLES,
) -> Comparison:
    """The comparison table for ``results`` (role -> metrics) with ``primary_metric`` as the task column.

    Roles absent from ``results`` get a row of missing cells ("not evaluated"). The ratio rows are
    "distilled vs teacher" and "distilled vs baseline"; each appears when both its roles are in ``roles``.
    An exported student's role (``student-gguf-q8_0``) adds a "size on disk" column and a ratio row
    against the distilled student: the task metric's change in points (with n) and the size saved.
    """
    exported = [r for r in roles if is_exported_role(r)]
    columns = columns_for(primary_metric, disk=bool(exported))
    rows = []
    for role in roles:
        metrics = _index(results[role]) if role in results else None
        cells = {c.key: _value_cell(c, metrics, "not evaluated") for c in columns}
        rows.append(Row(role, role_label(role), cells))
    by_role = {row.key: row for row in rows}
    ratios = []
    for ref, kinds, label in (
        ("teacher", _VS_TEACHER, "distilled vs teacher"),
        ("baseline", _VS_BASELINE, "distilled vs baseline"),
    ):
        if ref not in by_role or "student" not in by_role:
            continue
        cells = {
            c.key: _ratio_cell(
                c,
                kinds[c.key],
                by_role["student"].cells[c.key],
                by_role[ref].cells[c.key],
                ROLE_LABELS[ref],
                ROLE_LABELS["student"],
            )
            for c in columns
        }
        ratios.append(Row(f"student_vs_{ref}", label, cells))
    for role in exported if "student" in by_role else []:
        cells = {
            c.key: _ratio_cell(
                c, _VS_DISTILLED[c.key], by_role[role].cells[c.key], by_role["student"].cells[c.key], ROLE_LABELS["student"], role_label(role)
            )
            for c in columns
        }
        ratios.append(Row(f"{role}_vs_student", f"{role_label(role).removeprefix('distilled, ')} vs distilled", cells))
    return Comparison(primary_metric, columns, rows, ratios)


def metric_from_dict(data: Mapping[str, Any]) -> Metric:
    known = {"name", "value", "n", "reason", "higher_is_better", "unit", "low", "high"}
    return Metric(**{k: v for k, v in data.items() if k in known})


def results_from_json(data: Mapping[str, Any]) -> tuple[dict[str, list[Metric]], dict[str, str]]:
    """The evaluation results as stored (RunFolder.read_results) -> (role -> metrics, role -> model name)."""
    results: dict[str, list[Metric]] = {}
    models: dict[str, str] = {}
    for role, entry in data.items():
        results[role] = [metric_from_dict(m) for m in entry.get("metrics", [])]
        models[role] = str(entry.get("model", ""))
    return results, models


__all__ = [
    "Cell",
    "Column",
    "Comparison",
    "Row",
    "build_comparison",
    "exported_role",
    "is_exported_role",
    "role_label",
    "format_interval",
    "format_metric",
    "parse_count",
    "results_from_json",
    "retention",
]
