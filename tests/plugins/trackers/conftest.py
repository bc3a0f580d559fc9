from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from stillhouse.plugins import reports, trackers
from tests.kernel import fakes
from tests.kernel.conftest import write_fake_pipeline


@pytest.fixture
def tracker_host(make_host):
    """The kernel's fake plugins (a tiny task, scripted teacher, memorising student) plus the real
    reporters and trackers: a whole pipeline run in well under a second, no model or network."""
    fakes.reset()
    return make_host(fakes, reports, trackers, entry_points=False)


@pytest.fixture
def tracked_config(tmp_path: Path, stillhouse_home: Path) -> Callable[[str], Path]:
    """Writes the fake pipeline config with the markdown reporter and the given [report] TOML
    (trackers, options) and returns its path."""

    def write(report_toml: str) -> Path:
        path = write_fake_pipeline(tmp_path)
        text = path.read_text().replace('reporters = ["text"]', 'reporters = ["text", "markdown"]\n' + report_toml)
        path.write_text(text)
        return path

    return write
