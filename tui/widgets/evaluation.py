"""Run detail, Evaluation tab: the report's comparison table (kernel.comparison), every metric by
role, and why any cell is missing."""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.message import Message
from textual.widgets import DataTable, Static
from textual.worker import get_current_worker

from stillhouse.kernel.comparison import (
    _VS_BASELINE,
    _VS_TEACHER,
    Cell,
    Comparison,
    Row,
    build_comparison,
    format_metric,
    is_exported_role,
    results_from_json,
)
from stillhouse.kernel.run_folder import EvalResults, RunFolder
from stillhouse.tui.runfiles import results_table
from stillhouse.tui.workers import ReportsWorkerErrors

SHORT_LABELS = {"student_vs_teacher": "vs teacher", "student_vs_baseline": "vs baseline", "student": "distilled"}
BASELINE_MEANS = "baseline = the student model before distillation (same model, not trained); distilled = after"


def verdict(row_key: str, column_key: str, cell: Cell) -> str | None:
    """Whether a ratio cell says the distilled model is "better" or "worse" than the reference
    (a higher latency, memory or cost is worse; fewer parameters or more throughput is better)."""
    kinds = {"student_vs_teacher": _VS_TEACHER, "student_vs_baseline": _VS_BASELINE}.get(row_key)
    if kinds is None and row_key.endswith("_vs_student") and is_exported_role(row_key.removesuffix("_vs_student")):
        kinds = _VS_BASELINE  # an export against the distilled student reads like the student against its baseline
    if kinds is None or cell.value is None:
        return None
    kind, value = kinds.get(column_key), float(cell.value)
    if kind == "reduction":
        return "better" if value > 0 else "worse" if value < 0 else None
    if kind in ("size", "times"):
        return "better" if round(value, 2) > 1 else "worse" if round(value, 2) < 1 else None
    if kind == "delta":
        return "better" if value > 0 else "worse" if value < 0 else None
    return None  # retention: a share of the teacher, neither better nor worse by itself


def ratio_text(row_key: str, column_key: str, cell: Cell) -> Text:
    """A ratio cell in words and colour: green "better", red "worse"."""
    word = verdict(row_key, column_key, cell)
    if word is None:
        return Text(cell.text, style="dim" if cell.missing else "", justify="right")
    colour = "green" if word == "better" else "red"
    return Text.assemble((cell.text, colour), (f" ({word})", f"bold {colour}"), justify="right")


class ResultsLoaded(Message):
    def __init__(self, results: EvalResults, evals: dict[str, dict[str, float | None]], primary: str | None) -> None:
        super().__init__()
        self.results, self.evals, self.primary = results, evals, primary


def results_from_events(evals: dict[str, dict[str, float | None]]) -> EvalResults:
    """The evaluation results' shape from the run's ``eval`` events, for a run still evaluating."""
    return {
        role: {"model": "", "metrics": [{"name": name, "value": value} for name, value in metrics.items()]}
        for role, metrics in evals.items()
    }


def comparison_for(results: EvalResults, primary: str | None) -> Comparison | None:
    if not results:
        return None
    metrics, _ = results_from_json(results)
    roles: list[str] = [r for r in ("teacher", "baseline", "student") if r in metrics] or list(metrics)
    # the student's exports (evaluate.export = ["gguf:q8_0"]) are rows of their own, as in the report
    roles += [r for r in metrics if is_exported_role(r) and r not in roles]
    return build_comparison(metrics, primary or "accuracy", roles=roles)


def row_label(row: Row) -> str:
    """The short label of a comparison row: "distilled" for the student, the report's label for an
    export ("distilled, q8_0 GGUF") and its ratio row ("q8_0 GGUF vs distilled")."""
    if row.key in SHORT_LABELS:
        return SHORT_LABELS[row.key]
    exported = is_exported_role(row.key) or is_exported_role(row.key.removesuffix("_vs_student"))
    return row.label if exported else row.key


class EvaluationView(ReportsWorkerErrors, VerticalScroll):
    def __init__(self, run_dir: Path, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.run_dir = run_dir
        self.loaded = False

    def compose(self) -> ComposeResult:
        yield Static("not evaluated yet", id="eval-status")
        yield DataTable(id="comparison-table", cursor_type="row", show_cursor=False)
        yield Static("All metrics", classes="section-title")
        yield DataTable(id="metrics-table", cursor_type="row", zebra_stripes=True)
        yield Static("", id="eval-notes")

    def load(self, evals: dict[str, dict[str, float | None]], primary: str | None) -> None:
        self.loaded = True
        self._load({role: dict(m) for role, m in evals.items()}, primary)

    @work(thread=True, exclusive=True, exit_on_error=False)
    def _load(self, evals: dict[str, dict[str, float | None]], primary: str | None) -> None:
        results = RunFolder(self.run_dir).read_results()
        if not get_current_worker().is_cancelled:
            self.post_message(ResultsLoaded(results, evals, primary))

    def on_results_loaded(self, message: ResultsLoaded) -> None:
        results = message.results or results_from_events(message.evals)
        status = self.query_one("#eval-status", Static)
        if not results:
            status.update("not evaluated yet: the evaluate stage fills this tab")
            return
        written = RunFolder.RESULTS
        source = written if message.results else f"eval events ({written} not written yet)"
        status.update(Text(f"primary metric: {message.primary or '-'}   source: {source}", style="dim"))
        comparison = comparison_for(results, message.primary)
        self._show_comparison(comparison)
        self._show_metrics(results)

    def _show_comparison(self, comparison: Comparison | None) -> None:
        table = self.query_one("#comparison-table", DataTable)
        table.clear(columns=True)
        notes = self.query_one("#eval-notes", Static)
        if comparison is None:
            notes.update("")
            return
        table.add_column("", key="label")
        for column in comparison.columns:
            table.add_column(column.title, key=column.key)
        for row in comparison.rows:
            cells = [Text(row.cells[c.key].text, style="dim" if row.cells[c.key].missing else "", justify="right") for c in comparison.columns]
            table.add_row(Text(row_label(row), style="bold"), *cells, key=row.key)
        for row in comparison.ratios:
            cells = [ratio_text(row.key, c.key, row.cells[c.key]) for c in comparison.columns]
            table.add_row(Text(row_label(row), style="bold"), *cells, key=row.key)
        missing = comparison.notes()
        lines = [f"– {label} / {column}: {reason}" for label, column, reason in missing[:30]]
        text = Text(BASELINE_MEANS, style="dim")
        if lines:
            text.append("\n\nMissing cells\n" + "\n".join(lines), style="dim")
        notes.update(text)

    def _show_metrics(self, results: EvalResults) -> None:
        table = self.query_one("#metrics-table", DataTable)
        table.clear(columns=True)
        roles, rows = results_table(results)
        table.add_column("metric", key="metric")
        for role in roles:
            table.add_column(SHORT_LABELS.get(role, role), key=role)  # "distilled", as everywhere in the app
        for name, *values in rows:
            table.add_row(name, *(Text(format_metric(name, v), justify="right") for v in values), key=name)
