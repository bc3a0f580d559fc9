"""Runs: every run in a sortable, filterable table; live runs update while you watch."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Input, Static
from textual.worker import get_current_worker

from stillhouse.kernel.errors import StillhouseError
from stillhouse.kernel.runs import STAGES, run_folder
from stillhouse.tui.catalog import LIVE_STATUSES, SORT_KEYS, RunRow, filter_rows, format_started, short_ids, sort_rows
from stillhouse.tui.launch import cancel_run, resume_run
from stillhouse.tui.screens.confirm import ConfirmScreen
from stillhouse.tui.widgets import cells
from stillhouse.tui.widgets.paged_table import PagedTable, add_columns
from stillhouse.tui.workers import ReportsWorkerErrors, error_message

if TYPE_CHECKING:
    from stillhouse.tui.app import StillhouseApp

PAGE = 200

# (key, label, width): the most telling columns first so 80 columns show what matters.
COLUMNS: list[tuple[str, str, int]] = [
    ("name", "Name", 20),
    ("status", "Status", 11),
    ("progress", "Progress", 10),
    ("task", "Task", 7),
    # the distilled student's score and retention first: at 80 columns they are what a run is for
    ("score_student", "Distilled", 9),
    ("retention", "Ret.", 5),
    # the whole run id where the screen has room, else its shortest unique tail (which `still runs
    # show ID` and `still run --resume ID` take); y copies the whole id
    ("run_id", "Id", 4),
    # after the scores: on screen from ~110 columns, off to the right at 80
    ("score_teacher", "Teacher", 7),
    ("score_baseline", "Base", 6),
    ("cost", "Cost", 9),
    ("started", "Started (UTC)", 16),
    ("teacher", "Teacher model", 24),
    ("student", "Student model", 28),
]
DESCENDING_FIRST = {"progress", "score_teacher", "score_baseline", "score_student", "retention", "cost", "started"}


class RunsLoaded(Message):
    """Rows for the table: the newest page first (``complete=False``), then every run."""

    def __init__(self, rows: list[RunRow], source: str, error: str | None, complete: bool = True) -> None:
        super().__init__()
        self.rows, self.source, self.error, self.complete = rows, source, error, complete


class RunsChanged(Message):
    def __init__(self, rows: list[RunRow], source: str) -> None:
        super().__init__()
        self.rows, self.source = rows, source


BASE_WIDTHS = {key: max(width, len(label) + 2) for key, label, width in COLUMNS}  # room for the sort arrow
KEY_COLUMNS = ("name", "status", "progress", "task", "score_student", "retention", "run_id")
"""The columns that must fit the screen; Name and Task share what the others leave."""
NAME_MIN, NAME_MAX, TASK_MAX = 14, 60, 40


def column_widths(available: int, rows: list[RunRow], short: dict[str, str] | None = None) -> dict[str, int]:
    """Widths for the Runs table at ``available`` columns: Name and Task as wide as their longest
    value where the key columns (through the short Id) still fit, the rest fixed."""
    widths = dict(BASE_WIDTHS)
    short_width = max([BASE_WIDTHS["run_id"], *(len(v) for v in (short or {}).values())])
    widths["run_id"] = short_width
    fixed = sum(widths[k] + 2 for k in KEY_COLUMNS if k not in ("name", "task"))
    room = available - fixed - 4 - 2  # cell padding of Name and Task, a vertical scrollbar
    name_need = min(NAME_MAX, max([len(r.name) for r in rows] + [10]) + 2)  # + the mark
    task_need = min(TASK_MAX, max([len(r.task) for r in rows] + [BASE_WIDTHS["task"]]))
    name = min(name_need, max(NAME_MIN, room - task_need))
    task = max(BASE_WIDTHS["task"], min(task_need, room - name))
    widths["name"] = max(name, min(name_need, room - task), len("Name") + 2)
    widths["task"] = task
    full_width = max([short_width, *(len(r.run_id) for r in rows)])
    if room - widths["name"] - widths["task"] >= full_width - short_width:  # room for whole ids
        widths["run_id"] = full_width
    return widths


def progress_cell(row: RunRow) -> Text:
    """The progress bar; a completed run that ran only some stages (``--stage generate``, a
    standalone evaluation) names them instead of claiming 100 %."""
    done = row.stages_done
    if row.status == "completed" and done is not None and 0 < len(done) < len(STAGES):
        label = done[0] if len(done) == 1 else f"{len(done)}/{len(STAGES)} stages"
        return Text(label, style="cyan")
    return cells.progress_bar(row.progress, 4)


def row_cells(row: RunRow, marked: bool, widths: dict[str, int] | None = None, short: str | None = None) -> list[Any]:
    widths = widths or BASE_WIDTHS
    name = Text()
    if marked:
        name.append("● ", style="bold yellow")
    name.append(cells.clip(row.name, widths["name"] - (2 if marked else 0)))
    return [
        name,
        cells.status_text(row.status),
        progress_cell(row),
        cells.clip(row.task, widths["task"]),
        cells.score(row.scores.get("student")),
        cells.percent(row.retention),
        row.run_id if short is None or len(row.run_id) <= widths["run_id"] else Text(short, style="dim"),
        cells.score(row.scores.get("teacher")),
        cells.score(row.scores.get("baseline")),
        cells.money(row.cost_usd),
        format_started(row.started),
        cells.clip(row.teacher, 60),
        cells.clip(row.student, 60),
    ]


class RunsScreen(ReportsWorkerErrors, Screen):
    """The home screen."""

    BINDINGS = [
        Binding("enter", "open", "Open", show=False),
        Binding("slash", "focus_filter", "Filter"),
        Binding("s", "next_sort", "Sort"),
        Binding("S", "reverse_sort", "Reverse", show=False),
        Binding("space", "mark", "Mark", show=False),
        Binding("c", "compare", "Compare"),
        Binding("n", "new_run", "New"),
        Binding("x", "cancel_run", "Cancel run"),
        Binding("R", "resume_run", "Resume", show=False),
        Binding("y", "copy_run_id", "Copy id"),
        Binding("ctrl+r", "reload", "Reload"),
        Binding("escape", "clear_filter", "Clear filter", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.all_rows: dict[str, RunRow] = {}
        self.view: list[RunRow] = []
        self.sort_column = "started"
        self.descending = True
        self.source = "run folders"
        self.loaded = False
        self._polling = False
        self._first_painted = threading.Event()
        self.widths = dict(BASE_WIDTHS)
        self.short: dict[str, str] = {}

    @property
    def stillhouse(self) -> StillhouseApp:
        return self.app  # type: ignore[return-value]

    @property
    def marked(self) -> set[str]:
        """The app's marked runs (shared with Compare's selection)."""
        return set(self.stillhouse.marked)

    def on_screen_resume(self) -> None:
        # Compare may have changed the selection meanwhile: show the marks as they are now.
        if self.loaded:
            self.rebuild()

    def compose(self) -> ComposeResult:
        yield Header()
        yield Input(placeholder="filter: words, status:running, task:nli   (/ to focus, esc to clear)", id="runs-filter")
        # Each header keeps room for the sort arrow.
        yield add_columns(
            PagedTable(id="runs-table", cursor_type="row", zebra_stripes=True, page_size=PAGE),
            [(label, key, BASE_WIDTHS[key]) for key, label, _ in COLUMNS],
        )
        yield Static("loading runs…", id="runs-status")
        yield Footer()

    def on_mount(self) -> None:
        self.title = "Runs"
        self._label_sort()
        self.query_one(PagedTable).focus()
        self.load_runs()
        self.set_interval(self.stillhouse.poll_interval, self._poll)

    # -- workers ---------------------------------------------------------------------------

    @work(thread=True, exclusive=True, exit_on_error=False, group="runs-load")
    def load_runs(self, ingest: bool = False) -> None:
        app = self.stillhouse
        with app.catalog_lock:
            # A screenful of the newest runs first: with 10,000 runs the full read takes longer.
            first = [] if self.loaded else app.catalog.newest(PAGE)
        if first and not get_current_worker().is_cancelled:
            self._first_painted.clear()
            self.post_message(RunsLoaded(first, "run folders", None, complete=False))
            # Let the UI draw those rows before the full read competes with it for the GIL.
            self._first_painted.wait(timeout=1.0)
        with app.catalog_lock:
            rows = app.catalog.load(ingest=ingest)
            source, error = app.catalog.describe_source(), app.catalog.registry_error
        if not get_current_worker().is_cancelled:
            self.post_message(RunsLoaded(rows, source, error))

    @work(thread=True, exclusive=True, exit_on_error=False, group="runs-poll")
    def poll_runs(self) -> None:
        app = self.stillhouse
        try:
            with app.catalog_lock:
                changed = app.catalog.refresh()
                source = app.catalog.describe_source()
            if changed:
                self.post_message(RunsChanged(changed, source))
        finally:
            self._polling = False

    def _poll(self) -> None:
        if self.loaded and not self._polling:
            self._polling = True
            self.poll_runs()

    # -- messages --------------------------------------------------------------------------

    def on_runs_loaded(self, message: RunsLoaded) -> None:
        self.all_rows = {row.run_id: row for row in message.rows}
        self.source = message.source
        self.loaded = message.complete
        if not message.complete:
            self.call_after_refresh(self._first_painted.set)
        if message.error:
            self.notify(f"showing run folders only: {message.error}", title="Registry", severity="warning", timeout=6, markup=False)
        self.rebuild()

    def on_runs_changed(self, message: RunsChanged) -> None:
        table = self.query_one(PagedTable)
        self.source = message.source
        new = False
        for row in message.rows:
            new = new or row.run_id not in self.all_rows
            self.all_rows[row.run_id] = row
        if new:
            self.rebuild()
            return
        shown_keys = {r.run_id for r in self.view[: table.shown]}
        for row in message.rows:
            if row.run_id in shown_keys:
                for (key, _, _), value in zip(COLUMNS, row_cells(row, row.run_id in self.marked, self.widths, self.short.get(row.run_id)), strict=True):
                    table.update_cell(row.run_id, key, value)
        self.view = [self.all_rows[r.run_id] for r in self.view]
        table.items = self.view  # rows added later render the current values
        self._update_status()

    @on(Input.Changed, "#runs-filter")
    def _filter_changed(self) -> None:
        if self.loaded:
            self.rebuild()

    @on(Input.Submitted, "#runs-filter")
    def _filter_submitted(self) -> None:
        self.query_one(PagedTable).focus()

    @on(DataTable.RowSelected, "#runs-table")
    def _row_selected(self, event: DataTable.RowSelected) -> None:
        if event.row_key.value:
            self.stillhouse.open_run(event.row_key.value)

    @on(DataTable.HeaderSelected, "#runs-table")
    def _header_selected(self, event: DataTable.HeaderSelected) -> None:
        key = str(event.column_key.value)
        if key == self.sort_column:
            self.descending = not self.descending
        else:
            self.sort_column, self.descending = key, key in DESCENDING_FIRST
        self._label_sort()
        self.rebuild()

    # -- table -----------------------------------------------------------------------------

    def rebuild(self) -> None:
        """Filter, sort and show the first page, keeping the cursor on the same run."""
        table = self.query_one(PagedTable)
        current = self.selected_run_id()
        text = self.query_one("#runs-filter", Input).value
        self.view = sort_rows(filter_rows(self.all_rows.values(), text), self.sort_column, self.descending)
        target = next((i for i, r in enumerate(self.view) if r.run_id == current), 0) if current else 0
        self._fit_columns()
        table.show_items(self.view, self._render_row, upto=target + 1)
        if target:
            table.move_cursor(row=target)
        self._update_status()

    def on_resize(self) -> None:
        if self.all_rows:
            self.rebuild()

    def _fit_columns(self) -> None:
        """Size Name, Task and the ids to the screen and the rows (before the rows are rendered)."""
        self.short = short_ids(self.all_rows)
        widths = column_widths(self.size.width or 80, list(self.all_rows.values()), self.short)
        if widths == self.widths:
            return
        self.widths = widths
        table = self.query_one(PagedTable)
        for key, width in widths.items():
            table.columns[key].width = width  # type: ignore[index]
        table._clear_caches()
        table._require_update_dimensions = True
        table.refresh(layout=True)

    def _render_row(self, index: int, row: RunRow) -> tuple[list[Any], str]:
        return row_cells(row, row.run_id in self.marked, self.widths, self.short.get(row.run_id)), row.run_id

    def _update_status(self) -> None:
        live = sum(1 for r in self.all_rows.values() if r.live)
        arrow = "↓" if self.descending else "↑"
        label = dict((k, lbl) for k, lbl, _ in COLUMNS)[self.sort_column]
        parts = [
            f"{len(self.view):,} of {len(self.all_rows):,} runs" + ("" if self.loaded else " (loading the rest…)"),
            f"{live} live",
            f"sorted by {label} {arrow}",
            f"source: {self.source}",
        ]
        if self.marked:
            parts.append(f"{len(self.marked)} marked (c compares)")
        self.query_one("#runs-status", Static).update(" · ".join(parts))

    def _label_sort(self) -> None:
        table = self.query_one(PagedTable)
        for key, label, _ in COLUMNS:
            column = table.columns[key]  # type: ignore[index]
            arrow = (" ▼" if self.descending else " ▲") if key == self.sort_column else ""
            column.label = Text(label + arrow)
        table.refresh()

    def selected_run_id(self) -> str | None:
        table = self.query_one(PagedTable)
        if not table.row_count:
            return None
        try:
            key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key
        except Exception:  # noqa: BLE001 - cursor outside the rows after a clear
            return None
        return str(key.value) if key.value else None

    # -- actions ---------------------------------------------------------------------------

    def action_open(self) -> None:
        run_id = self.selected_run_id()
        if run_id:
            self.stillhouse.open_run(run_id)

    def action_focus_filter(self) -> None:
        # At once, not via focus() (deferred): keys typed right after "/" on a busy machine must
        # land in the filter, not trigger the screen's n / digit keys.
        self.set_focus(self.query_one("#runs-filter", Input))

    def action_clear_filter(self) -> None:
        filt = self.query_one("#runs-filter", Input)
        if filt.value:
            filt.value = ""
        self.query_one(PagedTable).focus()

    def action_next_sort(self) -> None:
        keys = list(SORT_KEYS)
        self.sort_column = keys[(keys.index(self.sort_column) + 1) % len(keys)]
        self.descending = self.sort_column in DESCENDING_FIRST
        self._label_sort()
        self.rebuild()

    def action_reverse_sort(self) -> None:
        self.descending = not self.descending
        self._label_sort()
        self.rebuild()

    def action_mark(self) -> None:
        run_id = self.selected_run_id()
        if not run_id:
            return
        marked = self.stillhouse.marked
        if run_id in marked:
            marked.remove(run_id)
        else:
            marked.append(run_id)
        row = self.all_rows[run_id]
        self.query_one(PagedTable).update_cell(run_id, "name", row_cells(row, run_id in self.marked, self.widths)[0])
        self._update_status()
        self.query_one(PagedTable).action_cursor_down()

    def action_compare(self) -> None:
        chosen = list(self.stillhouse.marked)
        if len(chosen) < 2:
            current = self.selected_run_id()
            chosen = [*chosen, *([current] if current and current not in chosen else [])]
        self.stillhouse.compare_runs(chosen)

    def action_new_run(self) -> None:
        self.app.switch_mode("new")

    def action_reload(self) -> None:
        """Bring the registry up to date with every run folder, then reload."""
        self.load_runs(ingest=True)

    def action_cancel_run(self) -> None:
        run_id = self.selected_run_id()
        if run_id:
            row = self.all_rows.get(run_id)
            confirm_cancel(self, run_id, row.status if row else None)

    def action_copy_run_id(self) -> None:
        run_id = self.selected_run_id()
        if run_id:
            copy_run_id(self.app, run_id)

    def action_resume_run(self) -> None:
        run_id = self.selected_run_id()
        if run_id:
            start_resume(self, run_id)


def copy_run_id(app: App, run_id: str) -> None:
    """Put ``run_id`` on the clipboard (OSC 52: the terminal must allow it) and show it, so it can
    be copied by hand where the terminal does not."""
    app.copy_to_clipboard(run_id)
    app.notify(run_id, title="Run id copied", markup=False)


def confirm_cancel(screen: Screen, run_id: str, status: str | None = None) -> None:
    """Ask, then SIGINT the run's process (in a worker: it reads the run's events first); the run
    records itself as interrupted. A run known to be finished is not asked about."""
    app: StillhouseApp = screen.app  # type: ignore[assignment]
    if status is not None and status not in LIVE_STATUSES:
        app.notify(f"run {run_id} is not running ({status})", title="Nothing to cancel", markup=False)
        return

    def cancel() -> None:
        try:
            pid = cancel_run(run_folder(run_id, app.home))
        except StillhouseError as exc:
            app.call_from_thread(notify_error, app, exc)
            return
        message = f"sent SIGINT to process {pid}; the run stops after its current step"
        app.call_from_thread(app.notify, message, title="Cancelling", markup=False)

    def answered(yes: bool | None) -> None:
        if yes:
            screen.run_worker(cancel, thread=True, exit_on_error=False, group="cancel")

    app.push_screen(ConfirmScreen(f"Cancel run {run_id}?", "The run stops and can be resumed later."), answered)


def start_resume(screen: Screen, run_id: str) -> None:
    """Resume a stopped run as a new detached process (in a worker: it reads the run's events
    first); the run's folder then says how it goes."""
    app: StillhouseApp = screen.app  # type: ignore[assignment]

    def resume() -> None:
        try:
            launched = resume_run(run_id, app.home)
        except StillhouseError as exc:
            app.call_from_thread(notify_error, app, exc)
            return
        message = f"resuming {run_id} (pid {launched.pid}); log: {launched.log_path}"
        app.call_from_thread(app.notify, message, title="Resume", markup=False)

    screen.run_worker(resume, thread=True, exit_on_error=False, group="resume")


def notify_error(app: StillhouseApp, exc: StillhouseError) -> None:
    title, message = error_message(exc)
    app.notify(message, title=title, severity="error", timeout=8, markup=False)
