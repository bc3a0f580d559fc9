"""A DataTable that asks for more rows when scrolled near its end.

The Runs screen holds thousands of runs in memory but adds them to the table a page at a time:
adding a row costs a little (keys, dimensions), showing one costs nothing more, so the first page
is on screen at once and the rest follows as the user scrolls (by keys, mouse or page down).
"""

from __future__ import annotations

from textual.message import Message
from textual.widgets import DataTable


class PagedTable(DataTable):
    class NearEnd(Message):
        """The view is within a page of the last loaded row."""

        def __init__(self, table: PagedTable) -> None:
            super().__init__()
            self.table = table

        @property
        def control(self) -> PagedTable:
            return self.table

    has_more = False  # set by the owner: whether rows remain to be added

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        self._check_near_end()

    def watch_cursor_coordinate(self, old_coordinate, new_coordinate) -> None:  # type: ignore[no-untyped-def]
        super().watch_cursor_coordinate(old_coordinate, new_coordinate)
        self._check_near_end()

    def _check_near_end(self) -> None:
        if not self.has_more:
            return
        page = max(self.size.height, 10)
        if self.scroll_y + 2 * page >= self.row_count or self.cursor_row >= self.row_count - page:
            self.post_message(self.NearEnd(self))
