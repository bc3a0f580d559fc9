"""TUI plugin: adds ``still tui``. Textual is imported only when the command runs, so
``still --help`` stays fast."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from stillhouse.kernel import hookimpl

if TYPE_CHECKING:  # pragma: no cover - typing only
    import click


@hookimpl
def register_commands(cli: click.Group) -> None:
    import click

    @cli.command("tui")
    @click.option("--home", type=click.Path(file_okay=False, path_type=Path), help="Stillhouse home (default $STILLHOUSE_HOME or ./.stillhouse).")
    @click.option("--light", is_flag=True, help="Start with the light theme.")
    @click.option("--no-registry", is_flag=True, help="List runs from their folders only.")
    @click.option("--poll", type=float, default=1.0, show_default=True, help="Seconds between reads of live runs' events.")
    def tui(home: Path | None, light: bool, no_registry: bool, poll: float) -> None:
        """Open the terminal UI: launch, watch, inspect and compare runs; query the registry."""
        from stillhouse.tui.app import StillhouseApp

        app = StillhouseApp(home, poll_interval=poll, use_registry=not no_registry, theme="textual-light" if light else None)
        app.run()
