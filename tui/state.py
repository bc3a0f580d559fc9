"""A run's live state, folded from its events as they are appended.

The TUI never asks the registry how a running run is doing: the run folder is the truth and the
registry only catches up at stage ends. :class:`EventFollower` reads only the events appended since
its last call (a torn last line is left for the next call) and folds each into the kernel's
:class:`RunState`: stages with progress and ETA, training metrics, evaluation results, cost,
artifacts and the pid that a cancel signals.

Pure Python, no Textual: the screens call this from worker threads and tests call it directly.
"""

from __future__ import annotations

from pathlib import Path

from stillhouse.kernel.events import Event
from stillhouse.kernel.run_folder import RunFolder
from stillhouse.kernel.run_state import MetricPoint as MetricPoint  # re-exported for the widgets
from stillhouse.kernel.run_state import RunState as RunState
from stillhouse.kernel.run_state import StageState as StageState


class EventFollower:
    """Reads a growing events file incrementally and keeps a :class:`RunState` current."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = Path(run_dir)
        self._reader = RunFolder(self.run_dir).event_reader()
        self.path = self._reader.path
        self.state = RunState(run_id=self.run_dir.name)

    def poll(self) -> list[Event]:
        """Fold in the events appended since the last call and return them."""
        events = self._reader.read_new()
        for event in events:
            self.state.apply(event)
        return events


def load_state(run_dir: Path) -> RunState:
    """The state of a run folder as of now."""
    follower = EventFollower(run_dir)
    follower.poll()
    return follower.state
