"""Fixtures for the TUI tests: a home with the registry's fixed fabricated runs, a fixed clock,
and helpers to drive the real app with Pilot from plain (non-async) tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.tui.helpers import FIXED_NOW


@pytest.fixture
def fixture_home(stillhouse_home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``$STILLHOUSE_HOME`` with the registry's standard fabricated runs, ingested into a real
    DuckDB registry. The working directory is the home's parent so paths show short and stable."""
    from stillhouse.registry.ingest import ingest_all
    from stillhouse.testing.sample_runs import standard_runs, write_run

    for spec in standard_runs():
        write_run(stillhouse_home, spec)
    ingest_all(stillhouse_home)
    monkeypatch.chdir(stillhouse_home.parent)
    return stillhouse_home


@pytest.fixture
def make_app(tmp_path: Path) -> Callable[..., object]:
    """``make_app(home, **options)``: the real app with a fixed clock and a test examples folder."""
    from stillhouse.tui.app import StillhouseApp

    def factory(home: Path, **options: object) -> StillhouseApp:
        options.setdefault("clock", lambda: FIXED_NOW)
        options.setdefault("poll_interval", 0.2)
        options.setdefault("examples_dir", tmp_path / "examples")
        return StillhouseApp(home, **options)  # type: ignore[arg-type]

    return factory


TINY_NLI = """\
# A tiny NLI pipeline for the New run screen's tests.
name = "tiny-nli"
task = "nli"

[data]
train = "data/nli.jsonl"
test = "data/nli.jsonl"
limit = 8

[teacher]
model = "openai/gpt-4o-mini"
max_tokens = 64

[student]
model = "HuggingFaceTB/SmolLM2-135M-Instruct"

[train]
learning_rate = 2e-4
num_epochs = 1
"""


@pytest.fixture
def examples_dir(tmp_path: Path) -> Path:
    """The folder make_app offers as examples: one valid config with its data beside it."""
    folder = tmp_path / "examples"
    (folder / "data").mkdir(parents=True, exist_ok=True)
    rows = (Path(__file__).parents[1] / "fixtures" / "data" / "nli.jsonl").read_text().splitlines()[:12]
    (folder / "data" / "nli.jsonl").write_text("\n".join(rows) + "\n")
    (folder / "tiny-nli.toml").write_text(TINY_NLI)
    return folder
