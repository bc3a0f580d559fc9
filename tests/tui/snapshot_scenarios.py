"""Scenarios for the SVG snapshot tests: each drives the app to one screen in a fixed state.

Times are fixed (the fixture runs' timestamps and the app's injected clock), paths are relative
to a fixed working directory, cursors do not blink and the SQL timing is pinned, so a snapshot
changes only when the screen does. Update with ``pytest tests/tui -k snapshot --snapshot-update``
and look at the report before committing.
"""

from __future__ import annotations

from textual.widgets import OptionList, Select, SelectionList, TextArea

from stillhouse.testing.sample_runs import standard_runs
from stillhouse.tui.screens.compare import CompareScreen
from stillhouse.tui.screens.run_detail import RunDetailScreen
from stillhouse.tui.widgets.evaluation import EvaluationView
from stillhouse.tui.widgets.samples import SamplesBrowser
from tests.tui.helpers import wait_for

SIZES = [(80, 24), (120, 40)]
RUNS = {s.name: s for s in standard_runs()}


async def settle(pilot) -> None:
    for widget in pilot.app.screen.query("Input, TextArea"):
        widget.cursor_blink = False
    await pilot.pause(0.1)
    # Repaint whole widgets: a line cached while the cursor was in its hidden blink phase would
    # otherwise keep drawing it hidden (the snapshot then differs by the cursor cell alone).
    for widget in pilot.app.screen.query("Input, TextArea"):
        if isinstance(widget, TextArea):
            # TextArea caches rendered lines under a key that reads the same for "blinking, cursor in
            # its hidden phase" and "not blinking": a line cached in the hidden phase would keep the
            # focused cursor undrawn in some runs and not others.
            widget._line_cache.clear()
        widget.refresh()
    await pilot.pause(0.3)


async def runs_loaded(pilot) -> None:
    await wait_for(pilot, lambda: getattr(pilot.app.screen, "loaded", False))


async def runs(pilot) -> None:
    await runs_loaded(pilot)
    await settle(pilot)


async def detail(pilot, name: str, key: str) -> None:
    await runs_loaded(pilot)
    pilot.app.open_run(RUNS[name].run_id)
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, RunDetailScreen) and pilot.app.screen.follower is not None)
    await wait_for(pilot, lambda: pilot.app.screen.follower.state.events_seen > 0)
    await pilot.press(key)


async def overview_live(pilot) -> None:
    await detail(pilot, "qa-live", "1")
    await settle(pilot)


async def training(pilot) -> None:
    await detail(pilot, "nli-mini", "2")
    await settle(pilot)


async def samples_rejected(pilot) -> None:
    await detail(pilot, "qa", "3")
    browser = pilot.app.screen.query_one(SamplesBrowser)
    await wait_for(pilot, lambda: browser.samples)
    pilot.app.screen.query_one("#samples-verdict", Select).value = "rejected"
    await wait_for(pilot, lambda: all(s.accepted is False for s in browser.view))
    pilot.app.screen.query_one("#samples-table").focus()
    await settle(pilot)


async def evaluation(pilot) -> None:
    await detail(pilot, "math", "4")
    view = pilot.app.screen.query_one(EvaluationView)
    await wait_for(pilot, lambda: view.query_one("#comparison-table").row_count == 5)
    await settle(pilot)


async def new_run_error(pilot) -> None:
    await pilot.press("2")
    await wait_for(pilot, lambda: pilot.app.screen.query("#examples"))
    screen = pilot.app.screen
    options = screen.query_one("#examples", OptionList)
    await wait_for(pilot, lambda: options.option_count > 0)
    options.highlighted = 0
    options.focus()
    await pilot.press("enter")
    editor = screen.query_one(TextArea)
    await wait_for(pilot, lambda: "tiny-nli" in editor.text)
    editor.load_text(editor.text.replace("num_epochs = 1", "num_epochs = 0"))
    await wait_for(pilot, lambda: not screen.validating)
    assert "num_epochs" in str(screen.query_one("#validation").render())
    await settle(pilot)


async def sql_results(pilot) -> None:
    await pilot.press("4")
    await wait_for(pilot, lambda: pilot.app.screen.query("#sql-editor"))
    screen = pilot.app.screen
    screen.query_one(TextArea).load_text(
        "SELECT name, task, status, student_score, round(retention_pct, 1) AS retention\nFROM run_summary ORDER BY name"
    )
    await pilot.press("ctrl+r")
    await wait_for(pilot, lambda: screen.result is not None)
    await settle(pilot)


async def compare(pilot) -> None:
    await runs_loaded(pilot)
    pilot.app.compare_runs([RUNS["nli-mini"].run_id, RUNS["nli-lr"].run_id, RUNS["nli-4o"].run_id])
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, CompareScreen) and len(pilot.app.screen.states) == 3)
    pilot.app.screen.query_one(SelectionList).focus()
    await settle(pilot)


async def sql_schema(pilot) -> None:
    """The schema sidebar open beside a result, the runs table expanded."""
    await sql_results(pilot)
    screen = pilot.app.screen
    await pilot.press("f2")
    tree = screen.query_one("#schema-tree")
    await wait_for(pilot, lambda: len(tree.root.children) > 0)
    node = tree.root.children[0]
    node.expand()
    tree.focus()
    await pilot.pause()
    tree.move_cursor(node.children[1])
    await settle(pilot)
