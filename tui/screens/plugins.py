"""Plugins: what is installed (package, version, kinds, hooks) and what failed to load, and why."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static

from stillhouse.tui.widgets.paged_table import add_columns
from stillhouse.tui.workers import ReportsWorkerErrors


class PluginsLoaded(Message):
    def __init__(self, rows: list[dict[str, Any]], failures: list[Any]) -> None:
        super().__init__()
        self.rows, self.failures = rows, failures


def provides_text(row: dict[str, Any]) -> str:
    return "; ".join(f"{kind}: {', '.join(names)}" for kind, names in sorted(row.get("provides", {}).items()))


class PluginsScreen(ReportsWorkerErrors, Screen):
    def __init__(self) -> None:
        super().__init__()
        self.rows: list[dict[str, Any]] = []

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("", id="plugins-summary")
        yield add_columns(
            DataTable(id="plugins-table", cursor_type="row", zebra_stripes=True),
            [("Plugin", "name", 14), ("Package", "package", 16), ("Version", "version", 8), ("Kinds", "kinds", 22), ("Hooks", "hooks", 40)],
        )
        yield Static("", id="plugin-detail")
        yield Static("", id="plugin-failures")
        yield Footer()

    def on_mount(self) -> None:
        self.title = "Plugins"
        self.load()

    @work(thread=True, exclusive=True, exit_on_error=False)
    def load(self) -> None:
        from stillhouse.kernel.plugins import get_host

        host = get_host()
        self.post_message(PluginsLoaded(host.describe(), list(host.failures)))

    def on_plugins_loaded(self, message: PluginsLoaded) -> None:
        self.rows = message.rows
        table = self.query_one(DataTable)
        table.clear()
        for row in message.rows:
            name = Text(row["name"], style="bold" if row["builtin"] else "bold yellow")
            table.add_row(name, row["package"], row["version"], ", ".join(row["kinds"]) or "-", ", ".join(row["hooks"]), key=row["name"])
        builtin = sum(1 for r in message.rows if r["builtin"])
        summary = f"{len(message.rows)} plugins loaded ({builtin} built-in, {len(message.rows) - builtin} third-party)"
        summary += f" · {len(message.failures)} failed" if message.failures else " · none failed"
        self.query_one("#plugins-summary", Static).update(summary)
        failures = self.query_one("#plugin-failures", Static)
        if message.failures:
            lines = Text("Broken plugins\n", style="bold red")
            for f in message.failures:
                lines.append(f"✗ {f.name} ({f.package}, {f.stage}): ", style="red")
                lines.append(f"{f.error}\n")
            failures.update(lines)
        else:
            failures.update("")
        if message.rows:
            self._detail(0)

    @on(DataTable.RowHighlighted, "#plugins-table")
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._detail(event.cursor_row)

    def _detail(self, index: int) -> None:
        if 0 <= index < len(self.rows):
            row = self.rows[index]
            text = Text(f"{row['name']}  ", style="bold")
            text.append(f"{row['package']} {row['version']}\n", style="dim")
            text.append(provides_text(row) or "provides no plugin classes")
            text.append("\nhooks: " + (", ".join(row["hooks"]) or "-"), style="dim")
            self.query_one("#plugin-detail", Static).update(text)
