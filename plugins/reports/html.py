"""The HTML report (``report.html``): one self-contained file, styles and charts inline, nothing
fetched from anywhere, so it can be mailed or archived with the run."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from pathlib import Path

from stillhouse.kernel.interfaces import Reporter, ReportInput
from stillhouse.plugins.reports.content import ReportView, build_view, training_facts
from stillhouse.plugins.reports.markdown import config_markdown
from stillhouse.plugins.reports.svg import bar_chart, line_chart

STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2rem auto; max-width: 72rem; padding: 0 1rem; color: #222; }
table { border-collapse: collapse; margin: 0.5rem 0 1rem; }
th, td { border: 1px solid #ddd; padding: 0.3rem 0.6rem; text-align: right; }
th:first-child, td:first-child { text-align: left; }
tr.ratio td { font-weight: 600; background: #f6f8fa; }
td.missing, .missing { color: #999; }
pre { background: #f6f8fa; padding: 0.8rem; overflow-x: auto; }
figure { margin: 1rem 0; }
"""


def _table(header: Sequence[str], rows: Sequence[tuple[str, Sequence[tuple[str, bool]]]]) -> str:
    """``rows``: (css class, [(text, missing)]) pairs."""
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = []
    for klass, cells in rows:
        tds = "".join(f'<td class="missing">{escape(t)}</td>' if miss else f"<td>{escape(t)}</td>" for t, miss in cells)
        body.append(f'<tr class="{klass}">{tds}</tr>' if klass else f"<tr>{tds}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _comparison(view: ReportView) -> str:
    comparison = view.comparison
    header = ["", *(c.title for c in comparison.columns)]
    rows = [
        (klass, [(row.label, False), *((row.cells[c.key].text, row.cells[c.key].missing) for c in comparison.columns)])
        for klass, group in (("", comparison.rows), ("ratio", comparison.ratios))
        for row in group
    ]
    html = _table(header, rows)
    notes = comparison.notes()
    if notes:
        items = "".join(f"<li>{escape(r)} · {escape(c)}: {escape(why)}</li>" for r, c, why in notes)
        html += f"<p>Missing values (never shown as 0):</p><ul>{items}</ul>"
    return html


def _metrics_chart(view: ReportView) -> str:
    """The task metrics (all on a 0..1 scale) per role."""
    series = [
        (view.role_label(role), [view.values.get(role, {}).get(name) for name in view.task_metrics])
        for role in view.roles
    ]
    return bar_chart(view.task_metrics, series, "Task metrics per model")


def render_html(view: ReportView) -> str:
    sections = [
        f"<h1>{view.title}: {escape(view.run_id)}</h1>",
        f"<p>{escape(view.headline.replace('**', '').replace('`', ''))}</p>",
        "<h2>Teacher vs student</h2>" if view.comparison.ratios else "<h2>Summary</h2>",
        _comparison(view),
        "<h2>Task metrics</h2>",
        f"<figure>{_metrics_chart(view)}</figure>",
    ]
    if not view.is_eval:
        sections += ["<h2>Training</h2>", f"<p>{escape(training_facts(view.curve))}</p>"]
    if view.curve:
        sections.append(f"<figure>{line_chart(view.curve, 'Training loss')}</figure>")
    sections += [
        "<h2>All measurements</h2>",
        "<p>Each value states the number of requests or examples it was measured on (n).</p>",
        _table(
            ["metric", "unit", *(view.role_label(r) for r in view.roles)],
            [
                (
                    "",
                    [(m.name, False), (m.unit, False), *((m.cells[r], m.cells[r].startswith("—")) for r in view.roles)],
                )
                for m in view.measurements
            ],
        ),
    ]
    if view.curation:
        sections += ["<h2>Data curation</h2>", "<ul>" + "".join(f"<li>{escape(line)}</li>" for line in view.curation) + "</ul>"]
    for title, pairs in (("Teacher generation", view.teacher_summary), ("Filtering", view.filter_summary)):
        if pairs:
            sections += [f"<h2>{title}</h2>", _table(["", "value"], [("", [(k, False), (v, False)]) for k, v in pairs])]
    config = config_markdown(view).removeprefix("```json\n").removesuffix("\n```")
    sections += ["<h2>Configuration</h2>", f"<pre>{escape(config)}</pre>"]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>Stillhouse report {escape(view.run_id)}</title><style>{STYLE}</style></head>"
        f"<body>{''.join(sections)}</body></html>\n"
    )


class HtmlReporter(Reporter):
    name = "html"
    description = "report.html: self-contained page with the comparison, a task-metric chart and the loss curve."

    def write(self, report: ReportInput) -> list[Path]:
        path = Path(report.run_dir) / "report.html"
        path.write_text(render_html(build_view(report)), encoding="utf-8")
        return [path]
