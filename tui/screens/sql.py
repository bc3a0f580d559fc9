"""SQL: a read-only query editor over the registry, results in a table, example queries one key
away (ctrl+e), errors inline under the editor."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import ModalScreen, Screen
from textual.widgets import Footer, Header, OptionList, Static, TextArea, Tree
from textual.widgets.option_list import Option
from textual.worker import get_current_worker

from stillhouse.kernel.errors import StillhouseError
from stillhouse.kernel.text import visible
from stillhouse.registry.queries import SqlExample, schema_catalog, sql_examples
from stillhouse.tui.data import QueryTable, user_query
from stillhouse.tui.widgets.paged_table import PagedTable
from stillhouse.tui.workers import ReportsWorkerErrors, error_message

if TYPE_CHECKING:
    from stillhouse.tui.app import StillhouseApp

PAGE = 500
CELL_WIDTH = 40


class QueryDone(Message):
    def __init__(self, result: QueryTable | None, error: str | None, seconds: float) -> None:
        super().__init__()
        self.result, self.error, self.seconds = result, error, seconds


class SchemaLoaded(Message):
    def __init__(self, relations: list[Any], error: str | None) -> None:
        super().__init__()
        self.relations, self.error = relations, error


def read_schema() -> list[Any]:
    """The registry's documented tables and views (what `still sql --schema` prints)."""
    return list(schema_catalog())


def elapsed_text(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def cell(value: Any) -> Any:
    if value is None:
        return Text("NULL", style="dim italic")
    if isinstance(value, float):
        return Text(f"{value:.6g}", justify="right")
    if isinstance(value, int) and not isinstance(value, bool):
        return Text(str(value), justify="right")
    text = visible(str(value))
    return text if len(text) <= CELL_WIDTH else text[: CELL_WIDTH - 1] + "…"


class ExamplesScreen(ModalScreen[SqlExample | None]):
    """Pick an example query; enter runs it."""

    BINDINGS = [Binding("escape", "dismiss(None)", "Close")]

    def __init__(self, examples: list[SqlExample]) -> None:
        super().__init__()
        self.examples = examples

    def compose(self) -> ComposeResult:
        options = OptionList(
            *(Option(Text.assemble((e.title, "bold"), "\n", (" ".join(e.sql.split())[:100], "dim")), id=str(i))
              for i, e in enumerate(self.examples)),
            id="examples-list",
            classes="dialog",
        )
        options.border_title = "Example queries (enter runs)"
        yield options

    @on(OptionList.OptionSelected)
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(self.examples[int(event.option.id or 0)])


class SqlScreen(ReportsWorkerErrors, Screen):
    BINDINGS = [
        Binding("ctrl+r", "run_query", "Run"),
        # priority: the editor would take ctrl+e as "end of line"
        Binding("ctrl+e", "examples", "Examples", priority=True),
        Binding("ctrl+j", "focus_results", "Results", show=False),
        # escape leaves the editor (then 1-5 switch screens again); from the results it goes back
        Binding("escape", "toggle_focus", "Leave editor", show=False),
        # priority: the editor binds ctrl+a to "line start"; here it selects all, as elsewhere
        Binding("ctrl+a", "select_all", "Select all", show=False, priority=True),
        Binding("ctrl+s", "export_csv", "Export CSV"),  # not ctrl+x: the editor's "cut"
        # priority: the editor binds ctrl+y to "redo"; here it copies (the editor keeps super+y for redo)
        Binding("ctrl+y", "copy_tsv", "Copy TSV", show=False, priority=True),
        # priority: a focused editor would otherwise keep it
        Binding("f2", "toggle_schema", "Schema", priority=True),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.examples: list[SqlExample] = []
        self.result: QueryTable | None = None
        self.schema_loaded = False

    @property
    def stillhouse(self) -> StillhouseApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="sql-body"):
            with Vertical(id="sql-main"):
                yield TextArea("", id="sql-editor", show_line_numbers=False, soft_wrap=True)
                yield Static(
                    "ctrl+r runs · ctrl+e examples · f2 schema · esc leaves the editor · ctrl+s exports CSV · ctrl+y copies TSV · read-only",
                    id="sql-status",
                )
                yield PagedTable(id="sql-results", zebra_stripes=True, page_size=PAGE)
            with Vertical(id="sql-schema"):
                yield Tree("registry", id="schema-tree")
                yield Static("reading the schema…", id="schema-doc")
        yield Footer()

    def on_mount(self) -> None:
        self.title = "SQL"
        self.examples = sql_examples()
        editor = self.query_one("#sql-editor", TextArea)
        if "sql" in editor.available_languages:  # tree-sitter-sql installed: keywords, strings, numbers in colour
            editor.language = "sql"
        if self.examples:
            editor.load_text(self.examples[0].sql)
        editor.focus()

    # -- schema sidebar --------------------------------------------------------------------

    def action_toggle_schema(self) -> None:
        sidebar = self.query_one("#sql-schema")
        sidebar.display = not sidebar.display
        if sidebar.display and not self.schema_loaded:
            self.schema_loaded = True
            self.load_schema()

    @work(thread=True, exclusive=True, exit_on_error=False, group="schema")
    def load_schema(self) -> None:
        try:
            relations, error = read_schema(), None
        except Exception as exc:  # noqa: BLE001 - the registry not installed or its migrations failing: shown in the sidebar
            relations, error = [], f"{type(exc).__name__}: {exc}"
        self.post_message(SchemaLoaded(relations, error))

    def on_schema_loaded(self, message: SchemaLoaded) -> None:
        doc = self.query_one("#schema-doc", Static)
        if message.error:
            self.schema_loaded = False  # try again on the next f2
            doc.update(Text(message.error, style="red"))
            return
        tree = self.query_one("#schema-tree", Tree)
        tree.clear()
        tree.root.expand()
        for rel in message.relations:
            label = Text(rel.name, style="bold")
            label.append(f" {rel.kind}", style="dim")
            node = tree.root.add(label, data=(rel.name, f"{rel.name} ({rel.kind}): {rel.doc}"))
            for col in rel.columns:
                col_label = Text(col.name)
                col_label.append(f" {col.type}", style="dim")
                node.add_leaf(col_label, data=(col.name, f"{rel.name}.{col.name} {col.type}: {col.doc}"))
        doc.update(Text("enter inserts a name into the query · f2 hides", style="dim"))

    @on(Tree.NodeHighlighted, "#schema-tree")
    def _schema_highlighted(self, event: Tree.NodeHighlighted) -> None:
        if event.node.data:
            self.query_one("#schema-doc", Static).update(Text(visible(event.node.data[1])))

    @on(Tree.NodeSelected, "#schema-tree")
    def _schema_selected(self, event: Tree.NodeSelected) -> None:
        if event.node.data and not event.node.allow_expand:
            self.query_one("#sql-editor", TextArea).insert(event.node.data[0])

    # -- queries ---------------------------------------------------------------------------

    def action_examples(self) -> None:
        def chosen(example: SqlExample | None) -> None:
            if example is not None:
                self.query_one("#sql-editor", TextArea).load_text(example.sql)
                self.action_run_query()

        self.app.push_screen(ExamplesScreen(self.examples), chosen)

    def action_run_query(self) -> None:
        sql = self.query_one("#sql-editor", TextArea).text
        self.query_one("#sql-status", Static).update("running…")
        self.run_sql(sql)

    @work(thread=True, exclusive=True, exit_on_error=False, group="sql")
    def run_sql(self, sql: str) -> None:
        start = time.perf_counter()
        try:
            result, error = user_query(sql, home=self.stillhouse.home), None
        except StillhouseError as exc:
            result, error = None, "\n".join(error_message(exc))
        except Exception as exc:  # noqa: BLE001 - DuckDB's parser and binder errors, shown as they are
            result, error = None, f"{type(exc).__name__}: {exc}"
        if not get_current_worker().is_cancelled:
            self.post_message(QueryDone(result, error, time.perf_counter() - start))

    def on_query_done(self, message: QueryDone) -> None:
        status = self.query_one("#sql-status", Static)
        table = self.query_one(PagedTable)
        if message.error is not None:
            status.update(Text(message.error, style="red"))
            status.add_class("error")
            return
        status.remove_class("error")
        self.result = message.result
        assert self.result is not None
        table.clear(columns=True)
        for i, name in enumerate(self.result.columns):
            table.add_column(name, key=f"c{i}")
        table.show_items(self.result.rows, lambda i, row: ([cell(v) for v in row], None))
        rows = self.result.note or f"{len(self.result.rows):,} rows"
        status.update(f"{rows} · {elapsed_text(message.seconds)}")

    def action_focus_results(self) -> None:
        self.query_one(PagedTable).focus()

    def action_focus_editor(self) -> None:
        self.query_one("#sql-editor", TextArea).focus()

    def action_toggle_focus(self) -> None:
        editor = self.query_one("#sql-editor", TextArea)
        if editor.has_focus:
            self.query_one(PagedTable).focus()
        else:
            editor.focus()

    def action_select_all(self) -> None:
        editor = self.query_one("#sql-editor", TextArea)
        if editor.has_focus:
            editor.select_all()

    def action_export_csv(self) -> None:
        if self.result is None:
            self.notify("run a query first (ctrl+r)", title="Nothing to export", markup=False)
            return
        self.export_csv(self.result)

    def action_copy_tsv(self) -> None:
        """Every row of the result as TSV on the clipboard, through the terminal (OSC 52)."""
        if self.result is None:
            self.notify("run a query first (ctrl+r)", title="Nothing to copy", markup=False)
            return
        self.app.copy_to_clipboard(as_tsv(self.result))
        self.notify(
            "sent to the terminal's clipboard (OSC 52); terminals without OSC 52 support do not receive it "
            "- ctrl+s writes a CSV file instead",
            title=f"Copied {len(self.result.rows):,} rows as TSV",
            markup=False,
        )

    @work(thread=True, exclusive=True, exit_on_error=False, group="export")
    def export_csv(self, result: QueryTable) -> None:
        """Every row of the result (not only the rows shown) to a CSV file under the home."""
        path = write_csv(result, self.stillhouse.home / "exports")
        self.app.call_from_thread(self.notify, str(path), title=f"Exported {len(result.rows):,} rows", markup=False)


def write_csv(result: QueryTable, folder: Path) -> Path:
    """``result`` as ``folder/query-<time>.csv`` (full precision, NULL as empty); the path."""
    import csv

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / time.strftime("query-%Y%m%d-%H%M%S.csv")
    n = 1
    while path.exists():
        n += 1
        path = folder / time.strftime(f"query-%Y%m%d-%H%M%S-{n}.csv")
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(result.columns)
        writer.writerows([["" if v is None else v for v in row] for row in result.rows])
    return path


def as_tsv(result: QueryTable) -> str:
    """``result`` as tab-separated text: a header line, then every row (NULL as empty; tabs and
    line breaks inside a value become spaces so each row stays one line)."""

    def field(value: Any) -> str:
        return "" if value is None else " ".join(str(value).replace("\t", " ").splitlines())

    lines = ["\t".join(field(c) for c in result.columns)]
    lines += ["\t".join(field(v) for v in row) for row in result.rows]
    return "\n".join(lines) + "\n"
