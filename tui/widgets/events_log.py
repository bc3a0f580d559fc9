"""Run detail, Events tab: the run's events.jsonl as a log that follows the file.

Progress and per-step metric events arrive by the hundred; they would bury the log, so they
update one replaceable line above it (latest progress per stage) and are counted, not listed.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import RichLog, Static

QUIET_TYPES = ("progress", "metric")
MAX_LINES = 5000
TYPE_STYLES = {
    "run_started": "bold cyan",
    "run_finished": "bold",
    "stage_started": "cyan",
    "stage_finished": "green",
    "stage_failed": "bold red",
    "eval": "magenta",
    "artifact": "blue",
    "teacher_call": "dim",
}
SKIP_KEYS = {"ts", "type", "run_id", "config"}


def describe(event: Mapping[str, Any]) -> Text:
    ts = event.get("ts")
    stamp = time.strftime("%H:%M:%S", time.gmtime(ts)) if isinstance(ts, (int, float)) else "--:--:--"
    kind = str(event.get("type", "?"))
    style = TYPE_STYLES.get(kind, "")
    if kind == "run_finished" and event.get("status") != "completed":
        style = "bold red"
    if kind == "teacher_call" and event.get("error"):
        style = "red"
    if kind == "log":
        style = {"error": "red", "warning": "yellow"}.get(str(event.get("level")), "")
    line = Text(f"{stamp} ", style="dim")
    line.append(f"{kind:<15}", style=style)
    details = " ".join(f"{k}={_short(v)}" for k, v in event.items() if k not in SKIP_KEYS and v is not None)
    line.append(" " + details)
    return line


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:59] + "…"


class EventsLog(Vertical):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.progress: dict[str, str] = {}
        self.quiet_counts: dict[str, int] = {}

    def compose(self) -> ComposeResult:
        yield Static("", id="events-progress")
        yield RichLog(id="events-log", max_lines=MAX_LINES, wrap=False, auto_scroll=True, markup=False)

    def add(self, events: Sequence[Mapping[str, Any]]) -> None:
        log = self.query_one(RichLog)
        shown = []
        for event in events:
            kind = event.get("type")
            if kind in QUIET_TYPES:
                self.quiet_counts[kind] = self.quiet_counts.get(kind, 0) + 1
                if kind == "progress":
                    self.progress[str(event.get("stage"))] = f"{event.get('done')}/{event.get('total')}"
            else:
                shown.append(event)
        # Opening a long run: only what the log keeps is worth rendering.
        for event in shown[-MAX_LINES:]:
            log.write(describe(event))
        if events:
            parts = [f"{stage} {value}" for stage, value in self.progress.items()]
            counts = ", ".join(f"{n} {kind}" for kind, n in self.quiet_counts.items())
            line = ("progress: " + "  ".join(parts) if parts else "") + (f"   ({counts} events folded)" if counts else "")
            self.query_one("#events-progress", Static).update(Text(line, style="dim"))
