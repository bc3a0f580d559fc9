"""Pilot tests of SQL, Plugins, Compare, help, the command palette and themes."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import DataTable, OptionList, SelectionList, Static, TextArea

from stillhouse.kernel import hookimpl
from stillhouse.testing.sample_runs import standard_runs
from stillhouse.tui.screens.compare import CompareScreen
from stillhouse.tui.screens.help import HelpScreen
from stillhouse.tui.screens.plugins import PluginsScreen
from stillhouse.tui.screens.run_detail import RunDetailScreen
from stillhouse.tui.screens.sql import ExamplesScreen, SqlScreen
from tests.tui.helpers import drive, highlight_row, notified, screen_text, shows, wait_for

RUNS = {s.name: s for s in standard_runs()}


def table_rows(app, selector: str) -> list[list[str]]:
    table = app.screen.query_one(selector, DataTable)
    return [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]


async def sql_screen(pilot) -> SqlScreen:
    await pilot.press("4")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, SqlScreen))
    return pilot.app.screen


def test_sql_query_results_and_inline_error(fixture_home: Path, make_app) -> None:
    app = make_app(fixture_home)

    async def scenario(pilot) -> None:
        screen = await sql_screen(pilot)
        editor = screen.query_one(TextArea)
        editor.load_text("SELECT name, student_score FROM run_summary WHERE task = 'nli' AND kind = 'pipeline' ORDER BY name")
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: screen.result is not None)
        assert [c.label.plain for c in screen.query_one("#sql-results", DataTable).columns.values()] == ["name", "student_score"]
        rows = table_rows(app, "#sql-results")
        assert [r[0] for r in rows] == ["nli-4o", "nli-fail", "nli-lr", "nli-mini"]
        assert rows[0][1] == "0.89" and rows[1][1] == "NULL"
        assert "4 rows" in screen_text(app)
        editor.load_text("SELECT nme FROM runs")
        await pilot.press("ctrl+r")
        status = screen.query_one("#sql-status", Static)
        await wait_for(pilot, lambda: status.has_class("error"))
        assert 'Referenced column "nme" not found' in screen_text(app)
        assert table_rows(app, "#sql-results")[0][0] == "nli-4o"  # the last good result stays
        editor.load_text("DELETE FROM runs")
        await pilot.press("ctrl+r")
        await shows(pilot, "read-only")

    drive(app, scenario)


def test_sql_ctrl_y_copies_the_whole_result_as_tsv(fixture_home: Path, make_app) -> None:
    """ctrl+y puts every row (not only those on screen) on the clipboard as TSV and says how many."""
    app = make_app(fixture_home)

    async def scenario(pilot) -> None:
        screen = await sql_screen(pilot)
        await pilot.press("ctrl+y")
        await notified(pilot, "run a query first")
        assert app.clipboard == ""
        # 600 rows: more than the table's first page (500) and far more than the 80x24 screen shows
        screen.query_one(TextArea).load_text("SELECT i, CASE WHEN i % 2 = 1 THEN 'r' || i END AS s FROM range(600) t(i)")
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: screen.result is not None)
        await pilot.press("ctrl+y")  # the editor has focus: ctrl+y copies rather than the editor's "redo"
        lines = app.clipboard.splitlines()
        assert len(lines) == 601 and lines[0] == "i\ts"
        assert lines[1] == "0\t" and lines[2] == "1\tr1" and lines[-1] == "599\tr599"  # NULL: an empty field
        copied = list(app._notifications)[-1]
        assert copied.title == "Copied 600 rows as TSV"
        assert "terminals without OSC 52 support do not receive it" in copied.message

    drive(app, scenario, size=(80, 24))


def test_example_queries_are_one_key_away_and_all_run(fixture_home: Path, make_app) -> None:
    app = make_app(fixture_home)

    async def scenario(pilot) -> None:
        screen = await sql_screen(pilot)
        assert len(screen.examples) >= 5
        for index, example in enumerate(screen.examples):
            await pilot.press("ctrl+e")
            await wait_for(pilot, lambda: isinstance(app.screen, ExamplesScreen))
            app.screen.query_one(OptionList).highlighted = index
            await pilot.press("enter")
            await wait_for(pilot, lambda: isinstance(app.screen, SqlScreen))
            await wait_for(pilot, lambda: "rows ·" in str(screen.query_one("#sql-status", Static).render()) or screen.query_one("#sql-status", Static).has_class("error"))
            assert not screen.query_one("#sql-status", Static).has_class("error"), (example.title, screen_text(app))
            assert screen.query_one(TextArea).text == example.sql

    drive(app, scenario)


class BrokenPlugin:
    """A third-party plugin whose registration raises."""

    __name__ = "broken-plugin"

    @hookimpl
    def register_tasks(self, register):  # noqa: ANN001, ANN201
        raise RuntimeError("missing dependency: frobnicate")


def test_plugins_lists_installed_and_broken(stillhouse_home: Path, make_app, make_host) -> None:
    make_host(BrokenPlugin())
    app = make_app(stillhouse_home)

    async def scenario(pilot) -> None:
        await pilot.press("5")
        await wait_for(pilot, lambda: isinstance(app.screen, PluginsScreen) and app.screen.rows)
        names = [r[0] for r in table_rows(app, "#plugins-table")]
        assert {"tasks", "teachers", "students", "registry", "tui"} <= set(names)
        text = screen_text(app)
        assert "Broken plugins" in text and "missing dependency: frobnicate" in text and "1 failed" in text
        await highlight_row(pilot, "#plugins-table", names.index("tasks"))
        await shows(pilot, "task: classification, conversation, math, nli, qa, summarization")

    drive(app, scenario)


def test_compare_picks_runs_and_shows_differences(fixture_home: Path, make_app) -> None:
    app = make_app(fixture_home)
    a, b = RUNS["nli-mini"], RUNS["nli-lr"]

    async def scenario(pilot) -> None:
        await pilot.press("3")
        await wait_for(pilot, lambda: isinstance(app.screen, CompareScreen) and app.screen.rows)
        screen = app.screen
        picker = screen.query_one(SelectionList)
        values = [picker.get_option_at_index(i).value for i in range(picker.option_count)]
        for run in (a, b):
            picker.highlighted = values.index(run.run_id)
            await pilot.press("space")
        await wait_for(pilot, lambda: len(screen.states) == 2)
        metrics = {r[0]: r[1:] for r in table_rows(app, "#compare-metrics")}
        assert metrics["student/accuracy"] == ["0.870", "0.780"]
        assert metrics["retention"] == ["97%", "87%"]
        config = {r[0]: r[1:] for r in table_rows(app, "#compare-config")}
        assert config["train.learning_rate"] == ["2e-05", "0.0001"]
        assert "name" in config and "task" not in config  # same task: not a difference
        await pilot.press("d")
        config = {r[0]: r[1:] for r in table_rows(app, "#compare-config")}
        assert config["task"] == ["nli", "nli"]

    drive(app, scenario)


def test_help_palette_and_theme(fixture_home: Path, make_app) -> None:
    app = make_app(fixture_home)

    async def scenario(pilot) -> None:
        await wait_for(pilot, lambda: app.screen.loaded)
        await pilot.press("f1")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen))
        await shows(pilot, "Keys on this screen (Runs)")
        assert "compares" in screen_text(app)
        await pilot.press("escape")
        dark = app.current_theme.dark
        await pilot.press("ctrl+t")
        assert app.current_theme.dark is not dark
        # Command palette: open a run by typing part of its name.
        await pilot.press("ctrl+p")
        await pilot.pause(0.3)
        await pilot.press(*"nli-4o")
        await wait_for(pilot, lambda: "Open run nli-4o" in screen_text(app), what="palette hit")
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, RunDetailScreen))
        assert app.screen.run_id == RUNS["nli-4o"].run_id

    drive(app, scenario)


def test_sql_schema_sidebar_lists_tables_views_columns_and_their_comments(fixture_home: Path, make_app) -> None:
    from textual.widgets import Tree

    from stillhouse.registry.queries import schema_catalog

    app = make_app(fixture_home)
    runs = next(r for r in schema_catalog() if r.name == "runs")

    async def scenario(pilot) -> None:
        screen = await sql_screen(pilot)
        sidebar = screen.query_one("#sql-schema")
        assert not sidebar.display
        await pilot.press("f2")  # from inside the editor
        tree = screen.query_one("#schema-tree", Tree)
        await wait_for(pilot, lambda: len(tree.root.children) > 0, what="schema read")
        names = [node.data[0] for node in tree.root.children]
        assert names == [r.name for r in schema_catalog()] and "run_summary" in names
        text = screen_text(app)
        assert "runs table" in text and "run_summary view" in text
        # a table's columns, each with its comment shown when highlighted
        node = tree.root.children[names.index("runs")]
        node.expand()
        await pilot.pause()
        tree.focus()
        tree.move_cursor(node.children[0])
        column = runs.columns[0]
        doc = screen.query_one("#schema-doc", Static)
        await wait_for(pilot, lambda: column.doc in str(doc.render()), what="column comment")
        assert column.doc.split()[-1] in screen_text(app)  # on screen, wrapped to the sidebar
        await pilot.press("enter")  # inserts the column name into the query
        assert column.name in screen.query_one("#sql-editor", TextArea).text
        await pilot.press("f2")
        assert not sidebar.display

    drive(app, scenario)


def test_sql_editor_highlights_sql(fixture_home: Path, make_app) -> None:
    """With tree-sitter-sql installed (a dependency), the SQL editor parses its text as SQL."""
    app = make_app(fixture_home)

    async def scenario(pilot) -> None:
        screen = await sql_screen(pilot)
        editor = screen.query_one("#sql-editor", TextArea)
        assert editor.language == "sql"
        editor.load_text("select 1 from runs")
        await pilot.pause()
        names = {name for line in editor._highlights.values() for _, _, name in line}
        assert "keyword" in names, names

    drive(app, scenario)
