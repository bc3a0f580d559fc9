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
ROLE_LABELS = {"student": "distilled", "model": "distilled"}
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
        verdict = sample.verdict  # "rejected: too_long (132 words > max_words 120)"
        conf = f" (confidence {sample.confidence})" if sample.confidence is not None else ""
        if sample.teachers:  # [[teachers]]: every teacher's answer, the chosen one marked
            rows = [f"{'* ' if name == sample.chosen_teacher else '  '}{name}: {answers}" for name, answers in sample.teachers]
            section("Teachers (* chosen)", "\n".join(rows))
        section("Teacher answer", sample.teacher_output)
        section("Judge", sample.judge)
        section("Parsed / verdict", f"{sample.parsed_answer}  →  {verdict}{conf}", "green" if sample.accepted else "red")
    for role, output in sample.outputs.items():
        error = sample.errors.get(role)
        section(f"{ROLE_LABELS.get(role, role)} answer", output + (f"\nerror: {error}" if error else ""), "red" if error else "")
    section("Reference", sample.reference, "cyan")
    return Group(*parts)


ANSWER_MIN = 12  # the narrowest a text column gets; wider screens share their width among them
ID_MAX, VERDICT_MAX = 18, 18  # longer ids and reasons are cut in the table (whole in the detail below)
DROP_FIRST = ("reference", "baseline", "teacher")
"""Text columns left out, in this order, when they would not all fit at ANSWER_MIN: the detail pane
under the table shows every one of them, and Distilled always stays on screen."""


def sample_columns(available: int, samples: list[SampleView]) -> list[tuple[str, str, int]]:
    """(label, key, width) of the samples table at ``available`` columns: Sample and Verdict as
    wide as their values (up to a cap), then Reference, Teacher, Baseline (when the evaluation has
    baseline answers) and Distilled sharing the rest; on a narrow screen Reference, then Baseline,
    then Teacher give way so that Distilled stays visible."""
    id_width = min(ID_MAX, max([len(s.sample_id) for s in samples] + [len("Sample")]))
    verdict_width = min(VERDICT_MAX, max([len(verdict_text(s)) for s in samples] + [len("Verdict")]))
    texts = [("Reference", "reference"), ("Teacher", "teacher")]
    if any("baseline" in s.outputs for s in samples):
        texts.append(("Baseline", "baseline"))
    texts.append(("Distilled", "student"))

    def free(count: int) -> int:
        return available - id_width - verdict_width - 2 * (2 + count) - 2  # cell padding, scrollbar

    for key in DROP_FIRST:
        if free(len(texts)) // len(texts) >= ANSWER_MIN:
            break
        texts = [(label, k) for label, k in texts if k != key]
    each = max(ANSWER_MIN, free(len(texts)) // len(texts))
    return [("Sample", "id", id_width), ("Verdict", "verdict", verdict_width), *[(label, key, each) for label, key in texts]]


def answer(sample: SampleView, role: str) -> str:
    """An evaluated model's answer as parsed (the label or number scored), else its raw output."""
    return sample.parsed.get(role) or sample.outputs.get(role, "")


class SamplesBrowser(ReportsWorkerErrors, Vertical):
    def __init__(self, run_dir: Path, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.run_dir = run_dir
        self.samples: list[SampleView] = []
        self.view: list[SampleView] = []
        self.loaded = False
        self.columns: list[tuple[str, str, int]] = sample_columns(80, [])

    def compose(self) -> ComposeResult:
        with Horizontal(id="samples-bar"):
            yield Select(BASE_FILTERS, value="all", allow_blank=False, id="samples-verdict")
            yield Input(placeholder="search prompts and answers", id="samples-search")
        yield add_columns(
            PagedTable(id="samples-table", cursor_type="row", zebra_stripes=True, page_size=PAGE),
            self.columns,
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
        self._fit_columns()
        table.show_items(self.view, self._render_row)
        table.border_subtitle = f"{len(self.view)} of {len(self.samples)}"
        if self.view:
            self._show_detail(0)
        else:
            self.query_one("#samples-detail", Static).update(
                "no samples match" if self.samples else "no samples yet: the filter stage writes them"
            )

    def on_resize(self) -> None:
        if self.samples and self._fit_columns():
            table = self.query_one(PagedTable)
            row = table.cursor_row
            table.show_items(self.view, self._render_row, upto=row + 1)
            table.move_cursor(row=row)

    def _fit_columns(self) -> bool:
        """Columns for the current width and samples; True when they changed (rows to re-add)."""
        columns = sample_columns(self.size.width or 80, self.samples)
        if columns == self.columns:
            return False
        self.columns = columns
        table = self.query_one(PagedTable)
        table.clear(columns=True)
        add_columns(table, columns)
        return True

    def _render_row(self, index: int, s: SampleView) -> tuple[list[object], str]:
        row: list[object] = []
        for _, key, width in self.columns:
            if key == "id":
                row.append(cells.clip(s.sample_id, width))
            elif key == "verdict":
                verdict = verdict_text(s)
                verdict.truncate(width, overflow="ellipsis")
                row.append(verdict)
            elif key == "reference":
                row.append(cells.clip(s.reference, width))
            elif key == "teacher":
                row.append(cells.clip(s.parsed_answer or answer(s, "teacher"), width))
            else:
                text = answer(s, key) or (answer(s, "model") if key == "student" else "")
                # Only evaluated samples have a distilled (or baseline) answer: training rows say so.
                row.append(cells.clip(text, width) if s.outputs else Text("not evaluated", style="dim"))
        return row, str(index)

    @on(DataTable.RowHighlighted, "#samples-table")
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key.value is not None:
            self._show_detail(int(event.row_key.value))

    def _show_detail(self, index: int) -> None:
        if 0 <= index < len(self.view):
            self.query_one("#samples-detail", Static).update(detail(self.view[index]))
