"""Trackers: reporters that send a run to an experiment tracker (MLflow, TensorBoard ...).

A tracker is a reporter plugin (registered through ``register_reporters``) that subclasses
:class:`Tracker`; a config names it in ``[report] trackers`` and sets its options in
``[report.options.<name>]``, validated by its ``Config``. Unlike a report file, a tracker talks to a
store or service that may be missing or down, so:

- at config check, before any teacher call, an unknown tracker or a tracker whose Python package is
  not installed is a ConfigError (exit 2) that says what to ``pip install``;
- at report time a tracker that fails warns once and the run goes on: the run's own registry and
  report files are the record, the tracker a copy.

Trackers receive a :class:`TrackedRun`: the report input plus the per-step metrics and report files
read back from the run folder, so every tracker logs the same things.
"""

from __future__ import annotations

import difflib
import importlib.util
import json
from abc import abstractmethod
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from stillhouse.kernel.comparison import retention as retention_share
from stillhouse.kernel.errors import ConfigError, Location, UnknownPluginError
from stillhouse.kernel.interfaces import Reporter, ReportInput
from stillhouse.kernel.run_folder import RunFolder
from stillhouse.kernel.run_state import RunState, fold

REPORT_FILES = ("report.md", "report.html", "student/README.md")
"""Files of a run folder a tracker keeps as artifacts, when the reporters wrote them (the last one
is the model card)."""


@dataclass
class StepMetric:
    key: str  # e.g. train/loss, eval/loss
    step: int
    value: float


@dataclass
class TrackedRun:
    """What every tracker logs about one run."""

    run_id: str
    run_dir: Path
    name: str
    params: dict[str, str]  # the resolved config, flattened: "train.learning_rate" -> "0.0002"
    steps: list[StepMetric]  # per-step training and validation metrics, in order
    teacher: dict[str, float]  # teacher calls, tokens, cost and the filter's acceptance
    evaluation: dict[str, dict[str, float]]  # role -> metric -> value (numbers only)
    artifacts: list[Path] = field(default_factory=list)
    retention: float | None = None  # distilled student's primary metric / the teacher's (1.0 = 100 %)

    @classmethod
    def from_report(cls, report: ReportInput) -> TrackedRun:
        return cls(
            run_id=report.run_id,
            run_dir=report.run_dir,
            name=str(report.config.get("name") or report.run_id),
            params=dict(_flatten(report.config)),
            steps=_step_metrics(fold(RunFolder(report.run_dir).events(), report.run_id)),
            teacher=_teacher_numbers(report.teacher_summary, report.filter_summary),
            evaluation={
                role: {m.name: value for m in metrics if (value := _number(m.value)) is not None}
                for role, metrics in report.results.items()
            },
            artifacts=[report.run_dir / name for name in REPORT_FILES if (report.run_dir / name).is_file()],
            retention=retention_share(_primary(report, "student"), _primary(report, "teacher")),
        )


class Tracker(Reporter):
    """A reporter that logs a run to an experiment tracker; see the module docstring.

    ``requires`` maps each module the tracker imports to what ``pip install`` gets it, so a missing
    package is named at config check rather than failing after the teacher was paid.
    """

    requires: ClassVar[dict[str, str]] = {}

    @abstractmethod
    def track(self, run: TrackedRun) -> list[Path]:
        """Log ``run``; return the files written inside the run folder (if any). May raise: the
        kernel turns any exception into one warning."""

    def write(self, report: ReportInput) -> list[Path]:
        return self.track(TrackedRun.from_report(report))


def missing_packages(tracker: type[Tracker]) -> list[str]:
    """The pip install specs of the tracker's modules that are not importable."""
    return [pip for module, pip in tracker.requires.items() if importlib.util.find_spec(module) is None]


def check_trackers(report_cfg: Any, host: Any, where: Callable[[tuple[str, ...]], Location]) -> None:
    """Config check of ``[report] trackers`` and ``[report.options]``: every name is a tracker
    plugin whose packages are installed, every options table belongs to a listed tracker and
    passes its Config. ``where`` locates a config key for the error."""
    from pydantic import ValidationError

    key = ("report", "trackers")
    for name in report_cfg.trackers:
        try:
            plugin = host.get("reporter", name)
        except UnknownPluginError:
            known = [n for n in host.names("reporter") if issubclass(host.get("reporter", n), Tracker)]
            close = difflib.get_close_matches(name, known, n=1)
            raise ConfigError(
                f"no tracker named '{name}'",
                where=where(key),
                hint=f"did you mean '{close[0]}'?"
                if close
                else f"trackers: {', '.join(known) or 'none installed'} (`still plugins` lists what is installed)",
            ) from None
        if not (isinstance(plugin, type) and issubclass(plugin, Tracker)):
            raise ConfigError(
                f"'{name}' is a reporter, not a tracker", where=where(key), hint="list it in report.reporters instead"
            )
        missing = missing_packages(plugin)
        if missing:
            raise ConfigError(
                f"the {name} tracker needs {', '.join(missing)}, which is not installed",
                where=where(key),
                hint="pip install "
                + " ".join(f"'{spec}'" for spec in missing)
                + " (or pip install 'stillhouse[tracking]'), or remove it from report.trackers",
            )
    for name, options in report_cfg.options.items():
        at = ("report", "options", name, *list(options)[:1])  # a table header has no line of its own to find
        if name not in report_cfg.trackers:
            raise ConfigError(
                f"options for tracker '{name}', which report.trackers does not list",
                where=where(at),
                hint=f'add "{name}" to report.trackers, or remove [report.options.{name}]',
            )
        try:
            host.get("reporter", name).Config.model_validate(options)
        except ValidationError as exc:
            first = exc.errors()[0]
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or name}: {e['msg']}" for e in exc.errors())
            at = ("report", "options", name, *map(str, first["loc"][:1]))
            raise ConfigError(f"invalid options for tracker '{name}': {problems}", where=where(at)) from None


def run_trackers(host: Any, report_cfg: Any, report: ReportInput, warn: Callable[[str], None]) -> list[Path]:
    """Run each configured tracker on the report; a failing one is reported through ``warn`` (once)
    and skipped. Returns the files the trackers wrote."""
    written: list[Path] = []
    for name in report_cfg.trackers:
        plugin = host.get("reporter", name)
        try:
            tracker = plugin(plugin.Config.model_validate(report_cfg.options.get(name, {})))
            written += tracker.write(report)
        except Exception as exc:  # noqa: BLE001 - a tracker is a copy of the run: its failure must not fail the run
            warn(f"tracker {name} failed, the run goes on without it: {type(exc).__name__}: {exc}")
    return written


# -- what a TrackedRun is made of ---------------------------------------------------------------


def _number(value: Any) -> float | None:
    """The value as a float when it is a number (not a bool, text or None: those are not plotted)."""
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _primary(report: ReportInput, role: str) -> float | None:
    return next((_number(m.value) for m in report.results.get(role, []) if m.name == report.primary_metric), None)


def _flatten(data: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, str]]:
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            yield from _flatten(value, dotted + ".")
        else:
            yield dotted, value if isinstance(value, str) else json.dumps(value)


def _step_metrics(state: RunState) -> list[StepMetric]:
    """Every training metric point the run logged (the kernel's one fold of its events)."""
    return [StepMetric(key, point.step or 0, point.value) for key, points in state.metrics.items() for point in points]


def _teacher_numbers(generate: Mapping[str, Any], filtered: Mapping[str, Any]) -> dict[str, float]:
    numbers = {f"teacher/{k}": v for k, value in generate.items() if (v := _number(value)) is not None}
    numbers |= {f"filter/{k}": v for k, value in filtered.items() if (v := _number(value)) is not None}
    judged = numbers.get("filter/accepted", 0.0) + numbers.get("filter/rejected", 0.0)
    if judged:
        numbers["filter/acceptance_rate"] = numbers.get("filter/accepted", 0.0) / judged
    return numbers
