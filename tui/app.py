"""The Stillhouse terminal UI: one App, one mode per top-level screen.

Modes (``1``-``6``): Runs, New run, Compare, SQL, Plugins, Sweeps. The run detail screen is pushed on top
of Runs. Database and file work happens in thread workers on the screens; the app owns what they
share: the home folder, the run catalog (behind a lock, since workers touch it), and the clock
(injected so snapshot tests see fixed times).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path

from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen

from stillhouse.kernel.runs import stillhouse_home
from stillhouse.tui.catalog import RunCatalog, RunRow
from stillhouse.tui.commands import RunsCommands
from stillhouse.tui.configs import short_path
from stillhouse.tui.screens.compare import CompareScreen
from stillhouse.tui.screens.help import HelpScreen
from stillhouse.tui.screens.new_run import NewRunScreen
from stillhouse.tui.screens.plugins import PluginsScreen
from stillhouse.tui.screens.run_detail import RunDetailScreen
from stillhouse.tui.screens.runs import RunsScreen
from stillhouse.tui.screens.sql import SqlScreen
from stillhouse.tui.screens.sweeps import SweepsScreen

MODE_TITLES = {"runs": "Runs", "new": "New run", "compare": "Compare", "sql": "SQL", "plugins": "Plugins", "sweeps": "Sweeps"}


def registry_rows(home: Path, *, ingest: bool = False, newest: int | None = None) -> list[RunRow]:
    from stillhouse.tui.data import registry_runs

    return registry_runs(home, ingest=ingest, newest=newest)


class StillhouseApp(App[None]):
    """``still tui``."""

    CSS_PATH = "app.tcss"
    TITLE = "Stillhouse"
    COMMANDS = App.COMMANDS | {RunsCommands}
    MODES = {
        "runs": RunsScreen,
        "new": NewRunScreen,
        "compare": CompareScreen,
        "sql": SqlScreen,
        "plugins": PluginsScreen,
        "sweeps": SweepsScreen,
    }
    DEFAULT_MODE = "runs"
    BINDINGS = [
        Binding("1", "switch_mode('runs')", "Runs", show=False),
        Binding("2", "switch_mode('new')", "New", show=False),
        Binding("3", "switch_mode('compare')", "Compare", show=False),
        Binding("4", "switch_mode('sql')", "SQL", show=False),
        Binding("5", "switch_mode('plugins')", "Plugins", show=False),
        Binding("6", "switch_mode('sweeps')", "Sweeps", show=False),
        Binding("f1,question_mark", "help", "Help"),
        Binding("ctrl+t", "toggle_theme", "Theme", show=False),
        Binding("ctrl+q", "quit", "Quit", priority=True),
    ]

    def __init__(
        self,
        home: Path | None = None,
        *,
        poll_interval: float = 1.0,
        use_registry: bool = True,
        clock: Callable[[], float] = time.time,
        examples_dir: Path | None = None,
        theme: str | None = None,
    ) -> None:
        super().__init__()
        self.home = Path(home) if home else stillhouse_home()
        self.poll_interval = poll_interval
        self.clock = clock
        self.examples_dir = examples_dir
        self.catalog = RunCatalog(self.home, registry=registry_rows if use_registry else None)
        self.catalog_lock = threading.Lock()
        self.marked: list[str] = []
        """Runs marked for comparison, in the order marked: the Runs screen's marks and the Compare
        screen's selection are this one list."""
        if theme:
            self.theme = theme

    def on_mount(self) -> None:
        self.sub_title = short_path(self.home)

    # -- navigation ------------------------------------------------------------------------

    def open_run(self, run_id: str) -> None:
        """Show a run's detail screen on top of the Runs screen."""
        if self.current_mode != "runs":
            self.switch_mode("runs")
        self.push_screen(RunDetailScreen(run_id))

    def compare_runs(self, run_ids: list[str]) -> None:
        self.switch_mode("compare")
        screen = self.screen
        if isinstance(screen, CompareScreen):
            screen.select_runs(run_ids)

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.screen))

    def deliver_screenshot(
        self, filename: str | None = None, path: str | None = None, time_format: str | None = None
    ) -> str | None:
        """Save the screen as SVG under the home's ``screenshots`` folder (Textual's default,
        ~/Downloads, may not exist) and say where."""
        folder = Path(path).expanduser() if path else self.home / "screenshots"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            saved = self.save_screenshot(filename, str(folder), time_format)
        except OSError as exc:
            self.notify(f"could not save in {folder}: {exc.strerror or exc}", title="Screenshot", severity="error", markup=False)
            return None
        self.notify(saved, title="Screenshot saved", markup=False)
        return saved

    def action_toggle_theme(self) -> None:
        self.theme = "textual-light" if self.current_theme.dark else "textual-dark"

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for mode, title in MODE_TITLES.items():
            yield SystemCommand(f"Go to {title}", f"Switch to the {title} screen", self._switcher(mode))
        yield SystemCommand("Toggle light/dark theme", "Switch between textual-light and textual-dark", self.action_toggle_theme)
        yield SystemCommand("Keys and screens", "Show the help screen", self.action_help)

    def _switcher(self, mode: str) -> Callable[[], Awaitable[bool]]:
        return lambda: self.run_action(f"switch_mode('{mode}')")
