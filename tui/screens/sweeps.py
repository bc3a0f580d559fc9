"""Sweeps: every ``still sweep`` with its progress, and the selected sweep's trials.

The list and the trials are read from the sweeps' Optuna journals (``tui.sweeps``, through the
sweep plugin's reading functions) in thread workers, every poll interval, so a running sweep's
counts and trials move while you watch. ``enter`` on a trial opens its run, ``c`` compares the
best trials' runs, ``n`` launches a sweep file, ``x`` cancels a running sweep, ``R`` resumes one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.screen import ModalScreen, Screen
from textual.widgets import DataTable, Footer, Header, Input, Label, Static

from stillhouse.kernel.errors import StillhouseError
from stillhouse.tui.screens.confirm import ConfirmScreen
from stillhouse.tui.screens.runs import notify_error
from stillhouse.tui.sweeps import (
    SweepOverview,
    best_run_ids,
    cancel_sweep,
    launch_sweep,
    load_sweeps,
    load_trials,
    resume_sweep,
    sort_trials,
)
from stillhouse.tui.widgets import cells
from stillhouse.tui.widgets.paged_table import add_columns
from stillhouse.tui.workers import ReportsWorkerErrors

if TYPE_CHECKING:
    from stillhouse.tui.app import StillhouseApp

SWEEP_COLUMNS = [("Sweep", "id", 34), ("Name", "name", 14), ("Trials", "trials", 9), ("Progress", "progress", 10),
                 ("Objective", "objective", 12), ("Best", "best", 9), ("State", "state", 10)]  # fmt: skip
TRIAL_COLUMNS = [("Trial", "number", 6), ("State", "state", 10), ("Objective", "objective", 16), ("Params", "params", 44),
                 ("Seconds", "seconds", 8), ("Run", "run", 34)]  # fmt: skip
STATE_STYLES = {"running": "bold cyan", "finished": "green", "stopped": "magenta", "unreadable": "bold red", "empty": "dim",
                "complete": "green", "pruned": "yellow", "fail": "red", "waiting": "dim"}  # fmt: skip
COMPARE_BEST = 3


class SweepsLoaded(Message):
    def __init__(self, sweeps: list[SweepOverview], trials: dict[str, list[dict[str, Any]]]) -> None:
        super().__init__()
        self.sweeps, self.trials = sweeps, trials


def _state(state: str) -> Text:
    return Text(state, style=STATE_STYLES.get(state, ""))


def sweep_cells(row: SweepOverview) -> list[Any]:
    return [
        row.id,
        cells.clip(row.name, 14),
        f"{row.finished}/{row.target}" + (f" +{row.running}" if row.running else ""),
        cells.progress_bar(row.progress, 4),
        cells.clip(row.objective, 12),
        cells.number(row.best_value),
        _state(row.state),
    ]


def format_params(params: dict[str, Any]) -> str:
    return ", ".join(f"{k.rsplit('.', 1)[-1]}={v:.3g}" if isinstance(v, float) else f"{k.rsplit('.', 1)[-1]}={v}" for k, v in params.items())


def trial_cells(row: dict[str, Any]) -> list[Any]:
    values = row.get("values")
    if values:
        objective = Text(", ".join(f"{v:.4g}" for v in values), justify="right")
    elif row.get("pruned_at_step") is not None:
        objective = Text(f"step {row['pruned_at_step']}", style="dim", justify="right")
    else:
        objective = Text("-", style="dim", justify="right")
    seconds = row.get("seconds")
    return [
        str(row["number"]),
        _state(row["state"]),
        objective,
        format_params(row.get("params") or {}),
        cells.duration(seconds) if seconds is not None else "-",
        row.get("run_id") or "-",
    ]


class SweepFilePrompt(ModalScreen[str | None]):
    """Ask for the sweep file to launch."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def compose(self) -> ComposeResult:
        with Vertical(id="sweep-prompt", classes="dialog"):
            yield Label("Launch a sweep: the path of a sweep file (enter launches, escape cancels)")
            yield Input(placeholder="e.g. examples/sweep.toml", id="sweep-path")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    @on(Input.Submitted, "#sweep-path")
    def _submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value.strip() or None)

    def action_cancel(self) -> None:
        self.dismiss(None)


class SweepsScreen(ReportsWorkerErrors, Screen):
    BINDINGS = [
        Binding("enter", "open_trial", "Open run", show=False),
        Binding("o", "sort_objective", "Sort by objective"),
        Binding("t", "sort_trial", "Sort by trial", show=False),
        Binding("c", "compare_best", "Compare best"),
        Binding("n", "launch", "Launch"),
        Binding("x", "cancel_sweep", "Cancel sweep"),
        Binding("R", "resume_sweep", "Resume"),
        Binding("ctrl+r", "reload", "Reload"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.sweeps: list[SweepOverview] = []
        self.selected: str | None = None
        self.trials: list[dict[str, Any]] = []
        self.sort_by = "objective"
        self.descending = True
        self.loaded = False
        self._polling = False

    @property
    def stillhouse(self) -> StillhouseApp:
        return self.app

    def compose(self) -> ComposeResult:
        yield Header()
        yield add_columns(DataTable(id="sweeps-table", cursor_type="row", zebra_stripes=True), [(lbl, key, w) for lbl, key, w in SWEEP_COLUMNS])
        yield Static("loading sweeps…", id="sweep-status")
        yield add_columns(DataTable(id="trials-table", cursor_type="row", zebra_stripes=True), [(lbl, key, w) for lbl, key, w in TRIAL_COLUMNS])
        yield Footer()

    def on_mount(self) -> None:
        self.title = "Sweeps"
        self.query_one("#sweeps-table", DataTable).focus()
        self.load()
        self.set_interval(self.stillhouse.poll_interval, self._poll)

    # -- workers ---------------------------------------------------------------------------

    @work(thread=True, exclusive=True, exit_on_error=False, group="sweeps-load")
    def load(self, selected: str | None = None) -> None:
        try:
            sweeps = load_sweeps(self.stillhouse.home)
            chosen = selected or self.selected or (sweeps[0].id if sweeps else None)
            trials = {}
            if chosen and any(s.id == chosen and not s.error for s in sweeps):
                trials[chosen] = load_trials(self.stillhouse.home, chosen)
            self.post_message(SweepsLoaded(sweeps, trials))
        finally:
            self._polling = False

    def _poll(self) -> None:
        if self.loaded and not self._polling:
            self._polling = True
            self.load()

    # -- messages --------------------------------------------------------------------------

    def on_sweeps_loaded(self, message: SweepsLoaded) -> None:
        self.loaded = True
        self.sweeps = message.sweeps
        table = self.query_one("#sweeps-table", DataTable)
        ids = [s.id for s in self.sweeps]
        if self.selected not in ids:
            self.selected = ids[0] if ids else None
        if [str(k.value) for k in table.rows] != ids:
            table.clear()
            for row in self.sweeps:
                table.add_row(*sweep_cells(row), key=row.id)
            if self.selected:
                table.move_cursor(row=ids.index(self.selected))
        else:
            for row in self.sweeps:
                for (_, key, _), value in zip(SWEEP_COLUMNS, sweep_cells(row), strict=True):
                    table.update_cell(row.id, key, value)
        if self.selected in message.trials:
            self.trials = message.trials[self.selected]
            self._show_trials()
        self._update_status()

    @on(DataTable.RowHighlighted, "#sweeps-table")
    def _sweep_highlighted(self, event: DataTable.RowHighlighted) -> None:
        sweep_id = str(event.row_key.value) if event.row_key and event.row_key.value else None
        if sweep_id and sweep_id != self.selected:
            self.selected = sweep_id
            self.trials = []
            self._show_trials()
            self.load(sweep_id)

    @on(DataTable.RowSelected, "#sweeps-table")
    def _sweep_selected(self) -> None:
        self.query_one("#trials-table", DataTable).focus()

    @on(DataTable.RowSelected, "#trials-table")
    def _trial_selected(self, event: DataTable.RowSelected) -> None:
        self.action_open_trial()

    @on(DataTable.HeaderSelected, "#trials-table")
    def _header_selected(self, event: DataTable.HeaderSelected) -> None:
        if str(event.column_key.value) == "objective":
            self.action_sort_objective()
        elif str(event.column_key.value) == "number":
            self.action_sort_trial()

    # -- views -----------------------------------------------------------------------------

    def current(self) -> SweepOverview | None:
        return next((s for s in self.sweeps if s.id == self.selected), None)

    def maximizing(self) -> bool:
        sweep = self.current()
        return not (sweep and sweep.directions and sweep.directions[0] == "minimize")

    def sorted_trials(self) -> list[dict[str, Any]]:
        return sort_trials(self.trials, self.sort_by, maximize=self.maximizing(), descending=self.descending)

    def _show_trials(self) -> None:
        table = self.query_one("#trials-table", DataTable)
        current = self.selected_trial()
        table.clear()
        rows = self.sorted_trials()
        for row in rows:
            table.add_row(*trial_cells(row), key=str(row["number"]))
        for key, label, _ in ((k, lbl, w) for lbl, k, w in TRIAL_COLUMNS):
            arrow = (" ▼" if self.descending else " ▲") if key == self.sort_by else ""
            table.columns[key].label = Text(label + arrow)  # type: ignore[index]
        if current is not None:
            index = next((i for i, r in enumerate(rows) if r["number"] == current["number"]), 0)
            table.move_cursor(row=index)

    def _update_status(self) -> None:
        sweep = self.current()
        if sweep is None:
            text = "no sweeps yet: n launches a sweep file (still sweep FILE)"
        elif sweep.error:
            text = f"{sweep.id}: unreadable: {sweep.error}"
        else:
            direction = sweep.directions[0] if sweep.directions else "maximize"
            parts = [f"{sweep.id}", f"{sweep.finished} of {sweep.target} trials finished", f"{sweep.running} running"]
            if sweep.failed:
                parts.append(f"{sweep.failed} failed")
            running = [r for r in self.trials if r["state"] == "running"]
            if running:
                parts.append("now: " + ", ".join(f"trial {r['number']} ({r.get('run_id') or 'starting'})" for r in running))
            if sweep.best_value is not None:
                parts.append(f"best {sweep.objective} ({direction}) {sweep.best_value:.4g} at trial {sweep.best_trial}")
            text = " · ".join(parts)
        self.query_one("#sweep-status", Static).update(text)

    def selected_trial(self) -> dict[str, Any] | None:
        table = self.query_one("#trials-table", DataTable)
        if not table.row_count:
            return None
        try:
            key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key
        except Exception:  # noqa: BLE001 - cursor outside the rows after a clear
            return None
        return next((r for r in self.trials if str(r["number"]) == key.value), None)

    # -- actions ---------------------------------------------------------------------------

    def action_open_trial(self) -> None:
        row = self.selected_trial()
        if row is None:
            return
        if not row.get("run_id"):
            self.notify(f"trial {row['number']} has no run ({row['state']})", title="No run", markup=False)
            return
        self.stillhouse.open_run(row["run_id"])

    def action_sort_objective(self) -> None:
        self.descending = not self.descending if self.sort_by == "objective" else True
        self.sort_by = "objective"
        self._show_trials()

    def action_sort_trial(self) -> None:
        self.descending = not self.descending if self.sort_by == "number" else False
        self.sort_by = "number"
        self._show_trials()

    def action_compare_best(self) -> None:
        run_ids = best_run_ids(self.trials, maximize=self.maximizing(), n=COMPARE_BEST)
        if len(run_ids) < 2:
            self.notify("needs two complete trials with runs", title="Nothing to compare", markup=False)
            return
        self.stillhouse.marked[:] = run_ids
        self.stillhouse.compare_runs(run_ids)

    def action_reload(self) -> None:
        self.load()

    def action_launch(self) -> None:
        app = self.stillhouse

        def launch(path: str) -> None:
            try:
                launched = launch_sweep(path, app.home)
            except StillhouseError as exc:
                app.call_from_thread(notify_error, app, exc)
                return
            message = f"started still sweep {path} (pid {launched.pid}); log: {launched.log_path}"
            app.call_from_thread(app.notify, message, title="Sweep launched", markup=False)

        def answered(path: str | None) -> None:
            if path:
                self.run_worker(lambda: launch(path), thread=True, exit_on_error=False, group="sweep-launch")

        app.push_screen(SweepFilePrompt(), answered)

    def action_resume_sweep(self) -> None:
        sweep_id, app = self.selected, self.stillhouse
        if not sweep_id:
            return

        def resume() -> None:
            try:
                launched = resume_sweep(sweep_id, app.home)
            except StillhouseError as exc:
                app.call_from_thread(notify_error, app, exc)
                return
            message = f"resuming sweep {sweep_id} (pid {launched.pid}); log: {launched.log_path}"
            app.call_from_thread(app.notify, message, title="Resume", markup=False)

        self.run_worker(resume, thread=True, exit_on_error=False, group="sweep-resume")

    def action_cancel_sweep(self) -> None:
        sweep_id, app = self.selected, self.stillhouse
        if not sweep_id:
            return

        def cancel() -> None:
            try:
                pids = cancel_sweep(sweep_id, app.home)
            except StillhouseError as exc:
                app.call_from_thread(notify_error, app, exc)
                return
            message = f"sent SIGINT to {', '.join(map(str, pids))}; the trial in flight stops, R resumes the sweep"
            app.call_from_thread(app.notify, message, title="Cancelling", markup=False)

        def answered(yes: bool | None) -> None:
            if yes:
                self.run_worker(cancel, thread=True, exit_on_error=False, group="sweep-cancel")

        app.push_screen(ConfirmScreen(f"Cancel sweep {sweep_id}?", "Its workers stop; R resumes it later."), answered)
