"""Run detail, Artifacts tab: what the run produced, with a preview of text files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.message import Message
from textual.widgets import DataTable, Static
from textual.worker import get_current_worker

from stillhouse.tui.runfiles import FileEntry, human_bytes, list_files
from stillhouse.tui.widgets.paged_table import add_columns
from stillhouse.tui.workers import ReportsWorkerErrors

PREVIEW_BYTES = 16_384
TEXT_SUFFIXES = {".md", ".toml", ".json", ".jsonl", ".txt", ".log", ".yaml", ".yml", ".csv", ".html"}


class FilesLoaded(Message):
    def __init__(self, entries: list[FileEntry]) -> None:
        super().__init__()
        self.entries = entries


class PreviewLoaded(Message):
    def __init__(self, text: Text) -> None:
        super().__init__()
        self.text = text


def preview(path: Path) -> Text:
    if path.is_dir():
        names = sorted(p.name + ("/" if p.is_dir() else "") for p in path.iterdir())
        return Text("\n".join(names[:200]) or "(empty folder)")
    if path.suffix.lower() not in TEXT_SUFFIXES:
        return Text(f"{path.name}: binary file, {human_bytes(path.stat().st_size)}", style="dim")
    with open(path, "rb") as fh:
        data = fh.read(PREVIEW_BYTES)
    text = data.decode("utf-8", errors="replace")
    more = "\n…" if path.stat().st_size > PREVIEW_BYTES else ""
    return Text(text + more)


class ArtifactsView(ReportsWorkerErrors, Vertical):
    def __init__(self, run_dir: Path, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.run_dir = run_dir
        self.loaded = False

    def compose(self) -> ComposeResult:
        yield add_columns(
            DataTable(id="artifacts-table", cursor_type="row", zebra_stripes=True),
            [("Path", "path", 40), ("Size", "size", 10), ("Artifact", "declared", 8)],
        )
        with VerticalScroll(id="artifact-preview-box"):
            yield Static("", id="artifact-preview")

    def load(self, artifacts: list[dict[str, Any]]) -> None:
        self.loaded = True
        self._load([dict(a) for a in artifacts])

    @work(thread=True, exclusive=True, exit_on_error=False, group="files")
    def _load(self, artifacts: list[dict[str, Any]]) -> None:
        entries = list_files(self.run_dir, artifacts)
        if not get_current_worker().is_cancelled:
            self.post_message(FilesLoaded(entries))

    def on_files_loaded(self, message: FilesLoaded) -> None:
        table = self.query_one(DataTable)
        table.clear()
        for entry in message.entries:
            mark = Text("✓", style="green") if entry.declared else ""
            table.add_row(entry.path, Text(human_bytes(entry.bytes), justify="right"), mark, key=entry.path)

    @on(DataTable.RowHighlighted, "#artifacts-table")
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key.value:
            self._preview(self.run_dir / event.row_key.value)

    @work(thread=True, exclusive=True, exit_on_error=False, group="preview")
    def _preview(self, path: Path) -> None:
        text = preview(path) if path.exists() else Text(f"{path.name} does not exist (yet)", style="dim")
        if not get_current_worker().is_cancelled:
            self.post_message(PreviewLoaded(text))

    def on_preview_loaded(self, message: PreviewLoaded) -> None:
        self.query_one("#artifact-preview", Static).update(message.text)
