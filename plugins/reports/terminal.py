"""The comparison as a rich Table for the terminal (rich imported when called)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from stillhouse.kernel.comparison import ROLES, build_comparison, is_exported_role
from stillhouse.kernel.interfaces import Metric, Reporter, ReportInput


def comparison_table(
    results: Mapping[str, Sequence[Metric]],
    primary_metric: str,
    *,
    roles: Sequence[str] = ROLES,
    title: str | None = None,
) -> Any:
    """A ``rich.table.Table``: one row per role, the ratio rows in bold, missing values dimmed and
    explained in the caption."""
    from rich.markup import escape
    from rich.table import Table

    comparison = build_comparison(results, primary_metric, roles=roles)
    table = Table(title=title or "Teacher vs distilled student", title_justify="left")
    table.add_column("")
    for column in comparison.columns:
        table.add_column(column.title, justify="right")
    for style, group in ((None, comparison.rows), ("bold", comparison.ratios)):
        for i, row in enumerate(group):
            cells = [escape(row.label)] + [
                f"[dim]{escape(cell.text)}[/dim]" if cell.missing else escape(cell.text)
                for cell in (row.cells[c.key] for c in comparison.columns)
            ]
            table.add_row(*cells, style=style, end_section=style is None and i == len(group) - 1)
    notes = comparison.notes()
    if notes:
        table.caption = escape("\n".join(f"— {r} · {c}: {why}" for r, c, why in notes))
        table.caption_justify = "left"
    return table


def measurements_table(metrics: Sequence[Metric], *, title: str | None = None) -> Any:
    """One model's metrics as rows (metric, value with n or the reason, unit): the view of `still eval`."""
    from rich.markup import escape
    from rich.table import Table

    from stillhouse.plugins.reports.content import metric_text

    table = Table(title=title, title_justify="left")
    for name, justify in (("metric", "left"), ("value", "right"), ("unit", "left")):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for metric in metrics:
        text = escape(metric_text(metric))
        table.add_row(metric.name, f"[dim]{text}[/dim]" if metric.value is None else text, escape(metric.unit))
    return table


class TerminalReporter(Reporter):
    """Prints the comparison table to the terminal at the end of a run; writes no file."""

    name = "terminal"
    description = "The comparison table on stdout."

    def write(self, report: ReportInput) -> list[Path]:
        from rich.console import Console

        if report.results:
            roles = [*ROLES, *(r for r in report.results if is_exported_role(r))]
            Console().print(comparison_table(report.results, report.primary_metric, roles=roles))
        return []
