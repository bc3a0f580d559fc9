"""Run detail, Samples tab: each prompt with the teacher's answer and verdict, and every evaluated
model's answer, filterable by accepted / rejected / reject reason, and searchable."""

from __future__ import annotations

from pathlib import Path

from rich.console import Group
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.widgets import DataTable, Input, Select, Static
from textual.worker import get_current_worker

from stillhouse.tui.runfiles import SampleView, filter_samples, load_samples, reject_reasons
from stillhouse.tui.widgets import cells
from stillhouse.tui.widgets.paged_table import PagedTable, add_columns
from stillhouse.tui.workers import ReportsWorkerErrors

PAGE = 300
BASE_FILTERS = [("all samples", "all"), ("accepted", "accepted"), ("rejected", "rejected"), ("evaluated", "eval")]


class SamplesLoaded(Message):
    def __init__(self, samples: list[SampleView]) -> None:
        super().__init__()
        self.samples = samples


def verdict_text(sample: SampleView) -> Text:
    if sample.accepted is None:
        return Text("eval", style="cyan")
    if sample.accepted:
        return Text("accepted", style="green")
    return Text(f"✗ {sample.reason}", style="red")


def detail(sample: SampleView) -> Group:
    parts: list[Text] = [Text(f"{sample.sample_id}  {sample.split}  {sample.source}", style="bold")]

    def section(title: str, body: str, style: str = "") -> None:
        if body:
            parts.append(Text(title, style="bold underline"))
            parts.append(Text(body, style=style))

    section("Prompt", sample.prompt)
    if sample.accepted is not None:
        verdict = "accepted" if sample.accepted else f"rejected: {sample.reason}"
        conf = f" (confidence {sample.confidence})" if sample.confidence is not None else ""
        section("Teacher answer", sample.teacher_output)
        section("Parsed / verdict", f"{sample.parsed_answer}  →  {verdict}{conf}", "green" if sample.accepted else "red")
    for role, output in sample.outputs.items():
        error = sample.errors.get(role)
        section(f"{role} answer", output + (f"\nerror: {error}" if error else ""), "red" if error else "")
    section("Reference", sample.reference, "cyan")
    return Group(*parts)


class SamplesBrowser(ReportsWorkerErrors, Vertical):
    def __init__(self, run_dir: Path, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.run_dir = run_dir
        self.samples: list[SampleView] = []
        self.view: list[SampleView] = []
        self.loaded = False

    def compose(self) -> ComposeResult:
        with Horizontal(id="samples-bar"):
            yield Select(BASE_FILTERS, value="all", allow_blank=False, id="samples-verdict")
            yield Input(placeholder="search prompts and answers", id="samples-search")
        yield add_columns(
            PagedTable(id="samples-table", cursor_type="row", zebra_stripes=True, page_size=PAGE),
            [("Sample", "id", 12), ("Verdict", "verdict", 16), ("Reference", "reference", 14), ("Teacher", "teacher", 18), ("Student", "student", 18)],
        )
        with VerticalScroll(id="samples-detail-box"):
            yield Static("no samples yet: the filter stage writes them", id="samples-detail")

    def load(self) -> None:
        self.loaded = True
        self._load()

    @work(thread=True, exclusive=True, exit_on_error=False)
    def _load(self) -> None:
        samples = load_samples(self.run_dir)
        if not get_current_worker().is_cancelled:
            self.post_message(SamplesLoaded(samples))

    def on_samples_loaded(self, message: SamplesLoaded) -> None:
        self.samples = message.samples
        select = self.query_one("#samples-verdict", Select)
        current = select.value
        options = BASE_FILTERS + [(f"reason: {r} ({n})", f"reason:{r}") for r, n in reject_reasons(self.samples)]
        select.set_options(options)
        select.value = current if any(v == current for _, v in options) else "all"
        self.apply_filter()

    @on(Select.Changed, "#samples-verdict")
    def _verdict_chosen(self) -> None:
        # Focus leaves the dropdown once a choice is made: a focused Select takes typed digits as a
        # search, so the screen's 1-6 tab keys would stop working.
        # After the overlay closes (it hands focus back to the Select), not before.
        self.call_after_refresh(self._leave_dropdown)

    def _leave_dropdown(self) -> None:
        select = self.query_one("#samples-verdict", Select)
        if select.has_focus or select.has_focus_within:
            self.query_one(PagedTable).focus()

    @on(Select.Changed, "#samples-verdict")
    @on(Input.Changed, "#samples-search")
    def apply_filter(self) -> None:
        verdict = self.query_one("#samples-verdict", Select).value
        search = self.query_one("#samples-search", Input).value
        self.view = filter_samples(self.samples, str(verdict) if verdict != Select.BLANK else "all", search)
        table = self.query_one(PagedTable)
        table.show_items(self.view, self._render_row)
        table.border_subtitle = f"{len(self.view)} of {len(self.samples)}"
        if self.view:
            self._show_detail(0)
        else:
            self.query_one("#samples-detail", Static).update(
                "no samples match" if self.samples else "no samples yet: the filter stage writes them"
            )

    @staticmethod
    def _render_row(index: int, s: SampleView) -> tuple[list[object], str]:
        student = s.outputs.get("student") or s.outputs.get("model") or ""
        teacher = s.parsed_answer or s.outputs.get("teacher", "")
        cells_ = [s.sample_id, verdict_text(s), cells.clip(s.reference, 14), cells.clip(teacher, 18), cells.clip(student, 18)]
        return cells_, str(index)

    @on(DataTable.RowHighlighted, "#samples-table")
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key.value is not None:
            self._show_detail(int(event.row_key.value))

    def _show_detail(self, index: int) -> None:
        if 0 <= index < len(self.view):
            self.query_one("#samples-detail", Static).update(detail(self.view[index]))
