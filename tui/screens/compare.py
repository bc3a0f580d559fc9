"""Compare: pick two or more runs; their metrics side by side and where their configs differ."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from rich.segment import Segment
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen
from textual.strip import Strip
from textual.widgets import DataTable, Footer, Header, Input, SelectionList, Static, TabbedContent, TabPane
from textual.widgets._toggle_button import ToggleButton
from textual.widgets.option_list import OptionDoesNotExist
from textual.widgets.selection_list import Selection
from textual.worker import get_current_worker

from stillhouse.kernel.comparison import format_metric
from stillhouse.kernel.runs import runs_root
from stillhouse.tui.catalog import RunRow, filter_rows, sort_rows
from stillhouse.tui.compare import config_diff, metrics_side_by_side
from stillhouse.tui.state import RunState, load_state
from stillhouse.tui.widgets import cells
from stillhouse.tui.workers import ReportsWorkerErrors

if TYPE_CHECKING:
    from stillhouse.tui.app import StillhouseApp

LIST_LIMIT = 300  # runs offered in the picker at once; the filter narrows the rest


class CatalogReady(Message):
    def __init__(self, rows: list[RunRow]) -> None:
        super().__init__()
        self.rows = rows


class Compared(Message):
    def __init__(self, states: list[RunState]) -> None:
        super().__init__()
        self.states = states


class RunPicker(SelectionList[str]):
    """A SelectionList whose unselected runs show an empty box: Textual draws a dim "X" in every
    box, which reads as selected on many themes (and in any text capture)."""

    def render_line(self, y: int) -> Strip:
        strip = super().render_line(y)
        try:
            selection = self.get_option_at_index(self.scroll_offset.y + y)
        except OptionDoesNotExist:
            return strip
        segments = list(strip)
        if selection.value in self._selected or len(segments) < 2 or segments[1].text != ToggleButton.BUTTON_INNER:
            return strip
        segments[1] = Segment(" " * len(segments[1].text), segments[1].style)
        return Strip(segments, strip.cell_length)


class CompareScreen(ReportsWorkerErrors, Screen):
    BINDINGS = [
        Binding("d", "toggle_all", "All keys / differences"),
        Binding("slash", "focus_filter", "Filter"),
        Binding("escape", "clear_selection", "Clear", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[RunRow] = []
        self.all_keys = False
        self.states: list[RunState] = []
        self._shown_selection: list[str] = []

    @property
    def stillhouse(self) -> StillhouseApp:
        return self.app  # type: ignore[return-value]

    @property
    def selected(self) -> list[str]:
        """The app's marked runs: what the Runs screen marks is what is selected here."""
        return self.stillhouse.marked

    @selected.setter
    def selected(self, run_ids: list[str]) -> None:
        self.stillhouse.marked[:] = run_ids

    def on_screen_resume(self) -> None:
        # Marks changed on the Runs screen show here when coming back.
        if self.rows and [r for r in self.selected] != self._shown_selection:
            self._fill_list()
            self._compare()

    def compose(self) -> ComposeResult:
        yield Header()
        yield Input(placeholder="filter runs (space selects, 2 or more)", id="compare-filter")
        yield RunPicker(id="compare-runs")
        with TabbedContent(id="compare-tabs"):
            with TabPane("Metrics", id="compare-metrics-tab"):
                yield DataTable(id="compare-metrics", zebra_stripes=True, cursor_type="row")
            with TabPane("Config", id="compare-config-tab"):
                yield DataTable(id="compare-config", zebra_stripes=True, cursor_type="row")
        yield Static("select two or more runs", id="compare-status")
        yield Footer()

    def on_mount(self) -> None:
        self.title = "Compare"
        self.query_one("#compare-runs", SelectionList).focus()
        self.load_catalog()

    @work(thread=True, exclusive=True, exit_on_error=False, group="compare-catalog")
    def load_catalog(self) -> None:
        app = self.stillhouse
        with app.catalog_lock:
            if not app.catalog.rows:
                app.catalog.load()
            else:
                app.catalog.refresh()
            rows = list(app.catalog.rows.values())
        self.post_message(CatalogReady(rows))

    def on_catalog_ready(self, message: CatalogReady) -> None:
        self.rows = sort_rows(message.rows, "started", True)
        self._fill_list()
        self._compare()

    def select_runs(self, run_ids: list[str]) -> None:
        """Preselect runs (from the Runs screen's marks) and compare them."""
        self.selected = list(dict.fromkeys(run_ids))
        if self.rows:  # otherwise the catalog's arrival fills the list and compares
            self._fill_list()
            self._compare()

    @on(Input.Changed, "#compare-filter")
    def _fill_list(self) -> None:
        text = self.query_one("#compare-filter", Input).value
        chosen = set(self.selected)
        matching = filter_rows(self.rows, text)[:LIST_LIMIT]
        # Selected runs stay listed even when the filter would hide them.
        shown = [r for r in self.rows if r.run_id in chosen] + [r for r in matching if r.run_id not in chosen]
        task_width = min(16, max([len(r.task) for r in shown] + [4]))  # the run ids line up
        picker = self.query_one("#compare-runs", SelectionList)
        self._shown_selection = list(self.selected)
        with picker.prevent(SelectionList.SelectedChanged):
            picker.clear_options()
            picker.add_options(
                [Selection(self._label(r, task_width), r.run_id, r.run_id in chosen) for r in shown]
            )

    def _label(self, row: RunRow, task_width: int = 8) -> Text:
        text = Text(cells.clip(row.name, 24).ljust(25))
        text.append_text(cells.status_text(row.status.ljust(11)))
        text.append(f" {cells.clip(row.task, task_width):<{task_width}} {row.run_id}", style="dim")
        return text

    @on(SelectionList.SelectedChanged, "#compare-runs")
    def _selection_changed(self) -> None:
        picker = self.query_one("#compare-runs", SelectionList)
        visible = {str(picker.get_option_at_index(i).value) for i in range(picker.option_count)}
        now_selected = set(picker.selected)
        # Keep the order in which runs were picked; hidden runs keep their selection.
        self.selected = [r for r in self.selected if r in now_selected or r not in visible]
        self.selected += [r for r in picker.selected if r not in self.selected]
        self._shown_selection = list(self.selected)
        self._compare()

    def _compare(self) -> None:
        if len(self.selected) < 2:
            self.states = []
            self.query_one("#compare-metrics", DataTable).clear(columns=True)
            self.query_one("#compare-config", DataTable).clear(columns=True)
            self.query_one("#compare-status", Static).update("select two or more runs")
            return
        self.load_states(list(self.selected))

    @work(thread=True, exclusive=True, exit_on_error=False, group="compare-states")
    def load_states(self, run_ids: list[str]) -> None:
        root = runs_root(self.stillhouse.home)
        states = [load_state(root / run_id) for run_id in run_ids]
        if not get_current_worker().is_cancelled:
            self.post_message(Compared(states))

    def on_compared(self, message: Compared) -> None:
        self.states = message.states
        self._show()

    def _show(self) -> None:
        states = self.states
        names = column_names(states)
        metrics = self.query_one("#compare-metrics", DataTable)
        metrics.clear(columns=True)
        metrics.add_column("metric", key="metric")
        for i, name in enumerate(names):
            metrics.add_column(name, key=f"run{i}")
        for key, values in metrics_side_by_side(states):
            metric = key.split("/", 1)[-1]
            shown = [
                cells.percent(v) if key == "retention" else Text(format_metric(metric, v), justify="right")
                for v in values
            ]
            best = _best(key, values)
            for i in best:
                shown[i].stylize("bold")
            metrics.add_row(key, *shown)
        config = self.query_one("#compare-config", DataTable)
        config.clear(columns=True)
        config.add_column("key", key="key")
        for i, name in enumerate(names):
            config.add_column(name, key=f"run{i}")
        diff = config_diff([s.config for s in states], all_keys=self.all_keys)
        for key, parts in diff:
            config.add_row(key, *differing_parts(parts, 30))
        what = "all keys" if self.all_keys else "keys that differ"
        self.query_one("#compare-status", Static).update(
            f"{len(states)} runs · {len(diff)} config {what} (d toggles) · bold = best"
        )

    def action_toggle_all(self) -> None:
        self.all_keys = not self.all_keys
        if self.states:
            self._show()

    def action_focus_filter(self) -> None:
        self.query_one("#compare-filter", Input).focus()

    def action_clear_selection(self) -> None:
        self.selected = []
        self.states = []
        self._fill_list()
        self.query_one("#compare-metrics", DataTable).clear(columns=True)
        self.query_one("#compare-config", DataTable).clear(columns=True)
        self.query_one("#compare-status", Static).update("select two or more runs")


LOWER_IS_BETTER = ("latency", "loss", "cost", "memory", "bytes", "parameters")


def _best(key: str, values: list[float | None]) -> list[int]:
    """Indexes of the best value in a row (lowest for latency, loss, cost, size; else highest)."""
    present = [(v, i) for i, v in enumerate(values) if v is not None]
    if len(present) < 2:
        return []
    lower = any(word in key for word in LOWER_IS_BETTER)
    target = min(present)[0] if lower else max(present)[0]
    return [i for v, i in present if v == target]


def column_names(states: list[Any]) -> list[str]:
    """A column title per run: its name, with the end of its id where two runs share a name."""
    base = [cells.clip(s.name or s.run_id, 22) for s in states]
    return [f"{n} ({s.run_id.rsplit('-', 1)[-1]})" if base.count(n) > 1 else n for n, s in zip(base, states, strict=True)]


def differing_parts(values: list[str], width: int) -> list[str]:
    """Each value cut to ``width`` around where the values start to differ: two long paths that
    differ near their end show their ends ("…/data/train-b.jsonl"), not the same first 30 letters."""
    flat = [" ".join(v.split()) for v in values]
    if all(len(v) <= width for v in flat) or len(set(flat)) < 2:
        return [cells.clip(v, width) for v in flat]
    common = len(os.path.commonprefix(flat))
    out = []
    for v in flat:
        if len(v) <= width:
            out.append(v)
            continue
        start = max(0, min(common - width // 3, len(v) - (width - 1)))
        part = v[start:]
        part = ("…" + part) if start else part
        out.append(cells.clip(part, width))
    return out
