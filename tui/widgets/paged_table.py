"""A DataTable that holds a long list but adds its rows a page at a time.

The Runs screen may hold 10,000 runs. Adding a row to a DataTable costs a little (keys, sizes) and
the first frame after adding costs more for every row added, while showing a row costs nothing
more; so the first page is on screen at once and the next one is added when the view or the
cursor comes within two screens of the last added row (keys, mouse wheel or page down).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from textual.widgets import DataTable

ColumnSpec = tuple[str, str, int]  # (label, key, width)


def add_columns(table: DataTable, columns: Sequence[ColumnSpec]) -> DataTable:
    """Fixed-width columns: widths known up front spare the table measuring every cell."""
    for label, key, width in columns:
        table.add_column(label, key=key, width=width)
    return table


# render(index, item) -> (cells, row key or None)
RowRenderer = Callable[[int, Any], tuple[Sequence[Any], str | None]]


class PagedTable(DataTable):
    page_size = 200

    def __init__(self, *args: Any, page_size: int | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if page_size:
            self.page_size = page_size
        self.items: Sequence[Any] = ()
        self.shown = 0
        self._render_row: RowRenderer = lambda i, item: (item, None)

    def show_items(self, items: Sequence[Any], render: RowRenderer, *, upto: int = 0) -> None:
        """Replace the rows with ``items``: the first page now (at least ``upto`` rows), more on demand."""
        self.clear()
        self.items, self._render_row, self.shown = items, render, 0
        self.add_page(upto)

    @property
    def has_more(self) -> bool:
        return self.shown < len(self.items)

    def add_page(self, upto: int = 0) -> None:
        end = min(len(self.items), max(self.shown + self.page_size, upto))
        for index in range(self.shown, end):
            cells, key = self._render_row(index, self.items[index])
            self.add_row(*cells, key=key)
        self.shown = end

    def near_end(self) -> bool:
        """More rows wait and the view or the cursor is within two screens of the last row."""
        page = max(self.size.height, 10)
        return self.has_more and (self.scroll_y + 2 * page >= self.row_count or self.cursor_row >= self.row_count - 2 * page)

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        self._check_near_end()

    def watch_cursor_coordinate(self, old_coordinate: Any, new_coordinate: Any) -> None:
        super().watch_cursor_coordinate(old_coordinate, new_coordinate)
        self._check_near_end()

    def _check_near_end(self) -> None:
        if self.near_end():
            # After the current update: a watcher is no place to add rows. Re-checked there, so a
            # burst of scroll events adds one page, not one per event.
            self.call_later(self._more)

    def _more(self) -> None:
        if self.near_end():
            self.add_page()
