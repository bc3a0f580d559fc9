"""Helpers to drive the real app with Pilot from plain (non-async) tests, and to read the screen."""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import Awaitable, Callable
from typing import Any

from rich.console import Console

# 2026-11-30 00:00 UTC: after every fixture run started, so elapsed times and ETAs are fixed.
FIXED_NOW = 1_796_083_200.0


def drive(app: Any, scenario: Callable[[Any], Awaitable[None]], size: tuple[int, int] = (120, 40)) -> None:
    """Run ``scenario(pilot)`` against the app in a headless terminal of ``size``."""

    async def main() -> None:
        async with app.run_test(size=size) as pilot:
            await scenario(pilot)

    asyncio.run(main())


async def wait_for(pilot: Any, predicate: Callable[[], object], timeout: float = 20.0, what: str = "") -> None:
    """Pause until ``predicate()`` is true: workers and timers need a few event-loop turns."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or predicate}")
        await pilot.pause(0.05)


def screen_text(app: Any) -> str:
    """The screen as plain text, as a user reads it."""
    width, height = app.size
    console = Console(width=width, height=height, file=io.StringIO(), force_terminal=True, record=True, legacy_windows=False)
    console.print(app.screen._compositor.render_update(full=True, screen_stack=app._background_screens))
    return console.export_text(styles=False)


async def shows(pilot: Any, text: str, timeout: float = 20.0) -> None:
    """Wait until ``text`` is on the screen."""
    await wait_for(pilot, lambda: text in screen_text(pilot.app), timeout, f"{text!r} on screen")


async def notified(pilot: Any, text: str, timeout: float = 20.0) -> None:
    """Wait until a notification containing ``text`` was raised (run_test does not draw toasts)."""
    await wait_for(
        pilot, lambda: any(text in str(n.message) for n in pilot.app._notifications), timeout, f"notification {text!r}"
    )


async def highlight_row(pilot: Any, selector: str, row: int) -> None:
    """Focus a table and put its cursor on ``row``, as arrow keys would."""
    table = pilot.app.screen.query_one(selector)
    table.focus()
    table.move_cursor(row=row)
    await pilot.pause()
