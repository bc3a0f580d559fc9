"""Run detail: one run in six tabs, following its events.jsonl while it runs."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Header, Static, TabbedContent, TabPane, Tabs
from textual.worker import Worker, WorkerState

from stillhouse.kernel.events import Event
from stillhouse.kernel.runs import runs_root
from stillhouse.tui.runfiles import config_text
from stillhouse.tui.screens.runs import confirm_cancel, start_resume
from stillhouse.tui.state import EventFollower, RunState
from stillhouse.tui.widgets import cells
from stillhouse.tui.widgets.artifacts import ArtifactsView
from stillhouse.tui.widgets.curves import TrainingCurves
from stillhouse.tui.widgets.evaluation import EvaluationView
from stillhouse.tui.widgets.events_log import EventsLog
from stillhouse.tui.widgets.overview import Overview
from stillhouse.tui.widgets.samples import SamplesBrowser
from stillhouse.tui.workers import ReportsWorkerErrors

if TYPE_CHECKING:
    from stillhouse.tui.app import StillhouseApp

TABS = ("overview", "training", "samples", "evaluation", "events", "artifacts")
LAZY_TABS: dict[str, type[SamplesBrowser | EvaluationView | ArtifactsView]] = {
    "samples": SamplesBrowser,
    "evaluation": EvaluationView,
    "artifacts": ArtifactsView,
}
# Which tabs must re-read their files when an event of this kind arrives.
RELOAD_ON = {
    "samples": ("filter", "evaluate"),
    "evaluation": ("evaluate",),
    "artifacts": ("generate", "filter", "train", "evaluate", "report"),
}


class RunPolled(Message):
    """New events were folded into the follower's state (``events`` may be empty)."""

    def __init__(self, events: list[Event], config: str | None) -> None:
        super().__init__()
        self.events = events
        self.config = config


def title_line(state: RunState, now: float) -> Text:
    line = Text(f"{state.name or state.run_id}  ", style="bold")
    line.append_text(cells.status_text(state.status))
    current = state.current_stage
    if current is not None:
        line.append(f"  {current.name} ")
        line.append_text(cells.progress_bar(current.fraction, 6))
        eta = current.eta_seconds(now)
        if eta is not None:
            line.append(f"  ETA {cells.duration(eta)}")
    line.append(f"   {state.task}: {state.teacher} → {state.student}", style="dim")
    return line


class RunDetailScreen(ReportsWorkerErrors, Screen):
    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back"),
        *(Binding(str(i + 1), f"tab('{tab}')", tab.title(), show=False) for i, tab in enumerate(TABS)),
        Binding("x", "cancel_run", "Cancel run"),
        Binding("R", "resume_run", "Resume"),
    ]

    def __init__(self, run_id: str) -> None:
        super().__init__()
        self.run_id = run_id
        self.follower: EventFollower | None = None
        self._polling = False
        self._config_shown = False

    @property
    def stillhouse(self) -> StillhouseApp:
        return self.app  # type: ignore[return-value]

    @property
    def run_dir(self) -> Path:
        return runs_root(self.stillhouse.home) / self.run_id

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(self.run_id, id="run-title")
        with TabbedContent(id="run-tabs", initial="overview"):
            with TabPane("Overview", id="overview"):
                yield Overview()
            with TabPane("Training", id="training"):
                yield TrainingCurves()
            with TabPane("Samples", id="samples"):
                yield SamplesBrowser(self.run_dir)
            with TabPane("Evaluation", id="evaluation"):
                yield EvaluationView(self.run_dir)
            with TabPane("Events", id="events"):
                yield EventsLog()
            with TabPane("Artifacts", id="artifacts"):
                yield ArtifactsView(self.run_dir)
        yield Footer()

    def on_mount(self) -> None:
        self.title = "Run"
        self.sub_title = self.run_id
        if not self.run_dir.is_dir():
            self.notify(f"no run folder {self.run_dir}", title="Run not found", severity="error", markup=False)
            self.app.pop_screen()
            return
        self.follower = EventFollower(self.run_dir)
        self._start_poll()
        self.set_interval(self.stillhouse.poll_interval, self._start_poll)

    # -- following events ------------------------------------------------------------------

    def _start_poll(self) -> None:
        if self.follower is not None and not self._polling:
            self._polling = True
            self.poll_events()

    @work(thread=True, exclusive=True, exit_on_error=False, group="run-poll")
    def poll_events(self) -> None:
        assert self.follower is not None
        events = self.follower.poll()
        config = None if self._config_shown else config_text(self.run_dir, self.follower.state.config)
        self.post_message(RunPolled(events, config))

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group == "run-poll" and event.state in (WorkerState.ERROR, WorkerState.CANCELLED):
            self._polling = False

    def on_run_polled(self, message: RunPolled) -> None:
        # The worker does not touch the state again until _polling is cleared below.
        try:
            self._show(message)
        finally:
            self._polling = False

    def _show(self, message: RunPolled) -> None:
        assert self.follower is not None
        state = self.follower.state
        now = self.stillhouse.clock()
        self.query_one("#run-title", Static).update(title_line(state, now))
        self.query_one(Overview).show(state, now)
        if message.config is not None:
            self.query_one(Overview).show_config(message.config)
            self._config_shown = bool(message.config)
        if any(e.get("type") == "metric" for e in message.events) or not message.events and state.events_seen == 0:
            self.query_one(TrainingCurves).show(state)
        if message.events:
            self.query_one(EventsLog).add(message.events)
        finished = {e.get("stage") for e in message.events if e.get("type") in ("stage_finished", "stage_failed")}
        ended = any(e.get("type") == "run_finished" for e in message.events)
        if any(e.get("type") == "eval" for e in message.events):
            finished.add("evaluate")
        for tab, stages in RELOAD_ON.items():
            if self._loaded(tab) and (ended or finished & set(stages)):
                self._load_tab(tab)
        active = self.query_one(TabbedContent).active
        if active and not self._loaded(active):
            self._load_tab(active)

    # -- tabs ------------------------------------------------------------------------------

    def _loaded(self, tab: str) -> bool:
        lazy = LAZY_TABS.get(tab)
        return lazy is None or self.query_one(lazy).loaded

    def _load_tab(self, tab: str) -> None:
        """Tabs that read files besides the events load when first shown, and again on the
        events that change their files."""
        if self.follower is None:
            return
        state = self.follower.state
        if tab == "samples":
            self.query_one(SamplesBrowser).load()
        elif tab == "evaluation":
            self.query_one(EvaluationView).load(state.evals, state.primary_metric)
        elif tab == "artifacts":
            self.query_one(ArtifactsView).load(state.artifacts)
        elif tab == "training":
            self.query_one(TrainingCurves).show(state)

    @on(TabbedContent.TabActivated)
    def _tab_activated(self, event: TabbedContent.TabActivated) -> None:
        tab = event.pane.id or ""
        if self.follower is not None and (not self._loaded(tab) or tab == "training"):
            self._load_tab(tab)

    def action_tab(self, tab: str) -> None:
        tabbed = self.query_one(TabbedContent)
        # Focus out of the pane being hidden first: otherwise focus falls to another widget in it,
        # and focusing inside a pane switches TabbedContent straight back to that pane.
        if self.focused is not None and tabbed.active_pane is not None and tabbed.active_pane in self.focused.ancestors:
            tabbed.query_one(Tabs).focus()
        tabbed.active = tab

    def action_cancel_run(self) -> None:
        state = self.follower.state if self.follower is not None else None
        confirm_cancel(self, self.run_id, state.status if state is not None and state.events_seen else None)

    def action_resume_run(self) -> None:
        start_resume(self, self.run_id)
