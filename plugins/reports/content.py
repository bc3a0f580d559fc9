"""What a report says, computed once from a :class:`ReportInput`: the comparison table, every
measurement with its n, the training curve and the stage summaries. The Markdown, HTML and
terminal renderers and the model card all draw on this, so they cannot disagree.

``load_report_input`` rebuilds a ReportInput from a run folder alone (for ``still export`` and for
re-rendering a finished run).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stillhouse.kernel.comparison import (
    MISSING,
    ROLES,
    Comparison,
    build_comparison,
    format_interval,
    format_metric,
    is_exported_role,
    role_label,
)
from stillhouse.kernel.curation import describe
from stillhouse.kernel.interfaces import Metric, ReportInput
from stillhouse.kernel.run_folder import RunFolder
from stillhouse.kernel.run_state import RunState, fold

# Measurements in the order a reader wants them after the task metrics.
MEASUREMENTS = (
    "parameters",
    "bytes_on_disk",
    "weights_bytes",
    "peak_working_memory_bytes",
    "peak_memory_bytes",
    "gpu_peak_memory_bytes",
    "request_latency_ms",
    "ttft_ms",
    "decode_ms_per_token",
    "latency_p50_ms",
    "latency_p95_ms",
    "batch_latency_p50_ms",
    "batch_latency_p95_ms",
    "throughput_tokens_per_s",
    "requests_per_s",
    "cost_usd_total",
    "cost_per_1k_requests_usd",
)


@dataclass
class MeasurementRow:
    """One metric across roles: ``cells`` holds the display text per role (value and n, or the reason)."""

    name: str
    unit: str
    cells: dict[str, str]


@dataclass
class ReportView:
    run_id: str
    task: str
    models: dict[str, str]
    split: str | None
    n: int | None
    comparison: Comparison
    roles: list[str]
    measurements: list[MeasurementRow]
    task_metrics: list[str]
    curve: list[tuple[int, float]]
    teacher_summary: list[tuple[str, str]]
    filter_summary: list[tuple[str, str]]
    config: dict[str, Any] = field(default_factory=dict)
    curation: list[str] = field(default_factory=list)
    """One line per data curation step (dedup, contamination, validation split, balance)."""
    values: dict[str, dict[str, float | None]] = field(default_factory=dict)
    """role -> metric name -> value (None when missing), for charts."""

    @property
    def is_eval(self) -> bool:
        """A standalone `still eval` run: one model, no training."""
        return self.config.get("kind") == "eval"

    @property
    def title(self) -> str:
        return "Evaluation report" if self.is_eval else "Distillation report"

    def role_label(self, role: str) -> str:
        return role_label(role)

    @property
    def headline(self) -> str:
        """One sentence: what was distilled into what, on what, measured on how many examples."""
        parts = [f"Task **{self.task}**"]
        for label, model in (
            ("teacher", (self.config.get("teacher") or {}).get("model")),
            ("student", (self.config.get("student") or {}).get("model")),
            ("model", self.models.get("model")),
        ):
            if model:
                parts.append(f"{label} `{model}`")
        if self.split:
            parts.append(f"evaluated on the {self.split} split" + (f" (n={self.n})" if self.n else ""))
        return " · ".join(parts)


def metric_text(metric: Metric | None, *, with_reason: bool = True) -> str:
    """``0.812 (n=200)``, or ``— (reason)`` for a metric that could not be measured."""
    if metric is None:
        return MISSING
    if metric.value is None:
        return f"{MISSING} ({metric.reason or 'not measured'})" if with_reason else MISSING
    text = format_metric(metric.name, metric.value)
    if metric.low is not None and metric.high is not None:  # a median with its 95% interval
        text += f" {format_interval(metric.name, metric.low, metric.high)}"
    return f"{text} (n={metric.n})" if metric.n else text


def flatten(data: Mapping[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """A stage summary as (dotted key, text) pairs, for a two-column table."""
    rows: list[tuple[str, str]] = []
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            rows.extend(flatten(value, f"{name}."))
        elif isinstance(value, float):
            rows.append((name, f"{value:.6g}"))
        elif isinstance(value, (list, tuple)):
            rows.append((name, ", ".join(str(v) for v in value)))
        else:
            rows.append((name, str(value)))
    return rows


def _ordered_metrics(results: Mapping[str, Iterable[Metric]], primary: str) -> tuple[list[str], list[str]]:
    """(task metric names with the primary first, all names in report order)."""
    seen: list[str] = []
    for metrics in results.values():
        for m in metrics:
            if m.name not in seen:
                seen.append(m.name)
    task = [primary] + [n for n in seen if n not in MEASUREMENTS and n != primary]
    rest = [n for n in MEASUREMENTS if n in seen]
    return task, task + rest


def _eval_facts(run_dir: Path) -> tuple[dict[str, str], str | None, int | None]:
    """Model names per role (evaluation results) and the evaluated split and n (evaluate stage summary)."""
    folder = RunFolder(run_dir)
    summary = fold(folder.events()).summary("evaluate")
    return folder.read_models(), summary.get("split"), summary.get("n")


def build_view(report: ReportInput) -> ReportView:
    config = report.config or {}
    # A distillation run shows all three rows, a role that was not evaluated included, then the
    # exported students (evaluate.export); `still eval` results have only their own role.
    roles = list(ROLES) if any(r in report.results for r in ROLES) else list(report.results)
    roles += [r for r in report.results if is_exported_role(r) and r not in roles]
    models, split, n = _eval_facts(Path(report.run_dir))
    for role, section in (("teacher", "teacher"), ("baseline", "student"), ("student", "student")):
        models.setdefault(role, str((config.get(section) or {}).get("model", "")))
    split = split or (config.get("evaluate") or {}).get("split")
    primary = [m for metrics in report.results.values() for m in metrics if m.name == report.primary_metric]
    n = n or max((m.n for m in primary), default=None)
    task_names, names = _ordered_metrics(report.results, report.primary_metric)
    indexed = {role: {m.name: m for m in report.results.get(role, [])} for role in roles}
    measurements = []
    for name in names:
        unit = next((indexed[r][name].unit for r in roles if name in indexed[r] and indexed[r][name].unit), "")
        cells = {r: metric_text(indexed[r].get(name)) if r in report.results else "not evaluated" for r in roles}
        measurements.append(MeasurementRow(name, unit, cells))
    return ReportView(
        run_id=report.run_id,
        task=str(config.get("task", "")),
        models=models,
        split=split,
        n=n,
        comparison=build_comparison(report.results, report.primary_metric, roles=roles),
        roles=roles,
        measurements=measurements,
        task_metrics=task_names,
        curve=list(report.training_curve),
        teacher_summary=flatten(report.teacher_summary),
        filter_summary=flatten(report.filter_summary),
        config=config,
        curation=curation_lines(Path(report.run_dir)),
        values={role: {m.name: m.value for m in metrics} for role, metrics in report.results.items()},
    )


def curation_lines(run_dir: Path) -> list[str]:
    """What data curation did in this run, from its ``curation`` events (the latest of each step)."""
    latest = {(e.get("step"), e.get("split")): e for e in RunFolder(run_dir).events() if e.get("type") == "curation"}
    return [describe(event) for event in latest.values()]


def training_facts(curve: list[tuple[int, float]]) -> str:
    if not curve:
        return "No training loss was recorded."
    first, last = curve[0], curve[-1]
    low = min(curve, key=lambda p: p[1])
    return (
        f"Training loss {first[1]:.4f} at step {first[0]} → {last[1]:.4f} at step {last[0]} "
        f"(lowest {low[1]:.4f} at step {low[0]}; {len(curve)} points)."
    )


def load_report_input(run_dir: Path) -> ReportInput:
    """A ReportInput from a run folder: config, evaluation results and the events."""
    folder = RunFolder(run_dir)
    results = folder.read_metrics()
    state: RunState = fold(folder.events(), folder.root.name)
    return ReportInput(
        run_id=state.run_id,
        run_dir=folder.root,
        config=folder.read_config() or state.config,
        results=results,
        primary_metric=state.primary_metric or _first_task_metric(results),
        training_curve=[(p.step or 0, p.value) for p in state.metrics.get("train/loss", [])],
        filter_summary=state.summary("filter"),
        teacher_summary=state.summary("generate"),
    )


def _first_task_metric(results: Mapping[str, list[Metric]]) -> str:
    """For a run folder whose run_started event predates ``primary_metric``: its first task metric."""
    names = [m.name for metrics in results.values() for m in metrics if m.name not in MEASUREMENTS]
    return names[0] if names else "accuracy"
