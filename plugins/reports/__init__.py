"""Built-in reporters (``markdown``, ``html``), the model card and the terminal comparison table
(``still eval`` lives in ``plugins.eval_command``, ``still export`` in ``plugins.exporters``).

Functions for the pipeline and other callers:

- ``write_model_card(student_dir, report_input)``   README.md next to a student's weights
- ``comparison_table(results, primary_metric)``       a rich Table for the terminal
- ``load_report_input(run_dir)``                      a ReportInput rebuilt from a run folder

Everything heavy (rich, torch, peft) is imported inside the functions that need it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from stillhouse.kernel import hookimpl
from stillhouse.kernel.interfaces import Metric, ReportInput


def write_model_card(student_dir: Path, report_input: ReportInput) -> Path:
    """Write ``student_dir/README.md`` with the run's numbers and training config."""
    from stillhouse.plugins.reports.model_card import write_model_card as write

    return write(student_dir, report_input)


def comparison_table(
    results: Mapping[str, Sequence[Metric]],
    primary_metric: str,
    *,
    roles: Sequence[str] = ("teacher", "baseline", "student"),
    title: str | None = None,
) -> Any:
    """The comparison as a ``rich.table.Table`` (rich is imported on call)."""
    from stillhouse.plugins.reports.terminal import comparison_table as table

    return table(results, primary_metric, roles=roles, title=title)


def load_report_input(run_dir: Path) -> ReportInput:
    """A ReportInput rebuilt from a run folder (config, evaluation results, events)."""
    from stillhouse.plugins.reports.content import load_report_input as load

    return load(run_dir)


@hookimpl
def register_reporters(register: Any) -> None:
    from stillhouse.plugins.reports.html import HtmlReporter
    from stillhouse.plugins.reports.markdown import MarkdownReporter
    from stillhouse.plugins.reports.model_card import ModelCardReporter
    from stillhouse.plugins.reports.terminal import TerminalReporter

    register(MarkdownReporter)
    register(HtmlReporter)
    register(TerminalReporter)
    register(ModelCardReporter)
