"""The Markdown report (``report.md`` in the run folder), and the Markdown pieces the model card reuses."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from stillhouse.kernel.comparison import Comparison
from stillhouse.kernel.interfaces import Reporter, ReportInput
from stillhouse.plugins.reports.content import ReportView, build_view, training_facts


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(_cell(h) for h in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def comparison_markdown(comparison: Comparison) -> str:
    """The comparison table, its ratio rows in bold, and a note for every missing value."""
    header = ["", *(c.title for c in comparison.columns)]
    rows = [[row.label, *(row.cells[c.key].text for c in comparison.columns)] for row in comparison.rows]
    rows += [[f"**{row.label}**", *(row.cells[c.key].text for c in comparison.columns)] for row in comparison.ratios]
    text = table(header, rows)
    ratio_note = (
        "\n\nRatios: size = reference parameters / distilled parameters; reductions = (1 − distilled / reference) × 100; "
        f"throughput = distilled / reference; retention = distilled {comparison.primary_metric} / teacher "
        f"{comparison.primary_metric} × 100; vs baseline, the {comparison.primary_metric} change in points."
    )
    notes = comparison.notes()
    if notes:
        text += "\n\nMissing values (never shown as 0):\n\n" + "\n".join(f"- {r} · {c}: {why}" for r, c, why in notes)
    return text + (ratio_note if comparison.ratios else "")


def measurements_markdown(view: ReportView) -> str:
    header = ["metric", "unit", *(view.role_label(r) for r in view.roles)]
    return table(header, [[m.name, m.unit, *(m.cells[r] for r in view.roles)] for m in view.measurements])


def config_markdown(
    view: ReportView, sections: Sequence[str] = ("teacher", "student", "train", "data", "evaluate")
) -> str:
    """The resolved config sections as JSON (keys are environment variable names, never secrets)."""
    chosen = {k: view.config[k] for k in sections if k in view.config}
    return "```json\n" + json.dumps(chosen, indent=2, default=str) + "\n```"


def render_markdown(view: ReportView) -> str:
    parts = [
        f"# {view.title}: {view.run_id}",
        view.headline,
        "## Teacher vs student" if view.comparison.ratios else "## Summary",
        comparison_markdown(view.comparison),
        "## All measurements",
        "Each value states the number of requests or examples it was measured on (n).",
        measurements_markdown(view),
    ]
    if not view.is_eval:
        parts += ["## Training", training_facts(view.curve)]
    if view.curation:
        parts += ["## Data curation", "\n".join(f"- {line}" for line in view.curation)]
    if view.teacher_summary:
        parts += ["## Teacher generation", table(["", "value"], view.teacher_summary)]
    if view.filter_summary:
        parts += ["## Filtering", table(["", "value"], view.filter_summary)]
    parts += ["## Configuration", config_markdown(view)]
    return "\n\n".join(parts) + "\n"


class MarkdownReporter(Reporter):
    name = "markdown"
    description = "report.md: the comparison table, every measurement with its n, training and stage summaries."

    def write(self, report: ReportInput) -> list[Path]:
        path = Path(report.run_dir) / "report.md"
        path.write_text(render_markdown(build_view(report)), encoding="utf-8")
        return [path]
