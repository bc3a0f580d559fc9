"""Command palette provider: "Open run <name>" for every run the catalog knows."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

from textual.command import Hit, Hits, Provider

if TYPE_CHECKING:
    from stillhouse.tui.app import StillhouseApp

MAX_HITS = 50


class RunsCommands(Provider):
    """Fuzzy-find a run by name, id, task or model and open it."""

    async def search(self, query: str) -> Hits:
        app: StillhouseApp = self.app  # type: ignore[assignment]
        matcher = self.matcher(query)
        rows = app.catalog.snapshot  # no lock: a load may hold it for a second
        hits = 0
        for row in sorted(rows, key=lambda r: r.started or 0, reverse=True):
            text = f"Open run {row.name}  {row.run_id}  {row.task} {row.status}"
            score = matcher.match(text)
            if score > 0:
                yield Hit(score, matcher.highlight(text), partial(app.open_run, row.run_id), help=f"{row.teacher} → {row.student}")
                hits += 1
                if hits >= MAX_HITS:
                    return
