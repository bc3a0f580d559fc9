"""Run detail, Overview tab: status, stage timeline with progress and ETA, the resolved config."""

from __future__ import annotations

import time

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

from stillhouse.kernel.curation import balance_brief
from stillhouse.tui.state import RunState, StageState
from stillhouse.tui.widgets import cells

QUIET_AFTER = 300.0  # seconds without an event before a running run is called out as quiet


def summary_text(state: RunState, now: float) -> Table:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column()
    status = cells.status_text(state.status)
    if state.pid and state.status == "running":
        status.append(f"  pid {state.pid}", style="dim")
    grid.add_row("Status", status)
    if state.error:
        grid.add_row("Error", Text(state.error, style="red"))
    grid.add_row("Run", f"{state.name}  ({state.run_id})")
    grid.add_row("Task", f"{state.task}  primary metric: {state.primary_metric or '-'}")
    grid.add_row("Teacher", state.teacher or "-")
    grid.add_row("Student", state.student or "-")
    started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(state.started)) if state.started else "-"
    end = state.finished if state.finished is not None else (now if state.status == "running" else state.last_ts)
    elapsed = cells.duration(end - state.started) if state.started and end else "-"
    grid.add_row("Started", f"{started}   elapsed {elapsed}")
    current = state.current_stage
    if current is not None:
        line = Text(f"{current.name}  ")
        line.append_text(cells.progress_bar(current.fraction, 10))
        if current.done is not None and current.total:
            line.append(f"  {current.done}/{current.total}")
        eta = current.eta_seconds(now)
        line.append(f"  ETA {cells.duration(eta)}" if eta is not None else "  ETA -")
        grid.add_row("Now", line)
    if state.status == "running" and state.last_ts is not None and now - state.last_ts > QUIET_AFTER:
        grid.add_row("Quiet", Text(f"no event for {cells.duration(now - state.last_ts)}: killed without a trace? (R resumes)", style="yellow"))
    if state.teacher_calls:
        grid.add_row(
            "Teacher calls",
            f"{state.teacher_calls} calls, {state.cache_hits} cached, {state.teacher_errors} errors, ${state.cost_usd:.4f}",
        )
    if state.retention is not None:
        grid.add_row("Retention", cells.percent(state.retention, "left"))
    return grid


def stage_line(stage: StageState, now: float) -> list[Text | str]:
    mark = cells.STAGE_MARKS.get(stage.status, "?")
    name = Text(f"{mark} {stage.name}", style=cells.STATUS_STYLES.get(stage.status, ""))
    if stage.status == "running":
        bar = cells.progress_bar(stage.fraction, 8)
        counts = f"{stage.done}/{stage.total}" if stage.done is not None and stage.total else ""
        counts = f"{stage.part} {counts}" if stage.part else counts
        eta = stage.eta_seconds(now)
        detail = f"{counts}  ETA {cells.duration(eta)}" if eta is not None else counts
        return [name, bar, detail]
    seconds = stage.seconds if stage.seconds is not None else (
        stage.finished - stage.started if stage.finished and stage.started else None
    )
    if stage.status == "finished":
        summary = ", ".join(f"{k}={v}" for k, v in stage.summary.items() if not isinstance(v, (dict, list)))
        if isinstance(balance := stage.summary.get("balance"), dict):  # the train stage: its label balance
            summary = f"{summary}; {balance_brief(balance)}" if summary else balance_brief(balance)
        return [name, Text(cells.duration(seconds)), summary]
    if stage.status in ("failed", "interrupted"):
        return [name, Text(stage.status, style=cells.STATUS_STYLES.get(stage.status, "")), stage.error or ""]
    return [name, Text("pending", style="dim"), ""]


def timeline(state: RunState, now: float) -> Table:
    table = Table(title="Stages", title_justify="left", show_header=False, box=None, padding=(0, 1), expand=False)
    table.add_column(no_wrap=True, min_width=12)
    table.add_column(no_wrap=True, min_width=10)
    # The summary wraps onto more lines where the screen is narrow: nothing of it is cut.
    table.add_column(overflow="fold")
    for stage in state.stages.values():
        table.add_row(*stage_line(stage, now))
    return table


class Overview(VerticalScroll):
    """Built fresh from the state on each update: it holds no reference to the (worker-owned) state."""

    def compose(self) -> ComposeResult:
        yield Static("reading events…", id="overview-summary")
        yield Static("", id="overview-timeline")
        yield Static("", id="overview-config")

    def show(self, state: RunState, now: float) -> None:
        self.query_one("#overview-summary", Static).update(summary_text(state, now))
        self.query_one("#overview-timeline", Static).update(timeline(state, now))

    def show_config(self, text: str) -> None:
        body = cells.toml_text(text) if text else Text("no config recorded", style="dim")
        self.query_one("#overview-config", Static).update(Group(Text("Resolved config", style="bold"), body))
