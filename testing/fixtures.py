"""pytest fixtures for Stillhouse and its plugin authors (registered through the pytest11 entry point).

- ``stillhouse_home``: a temporary ``$STILLHOUSE_HOME``, set for the test.
- ``make_host``: build an isolated PluginHost with extra plugins; it becomes the process host for the test.
- ``tiny_model_dir`` / ``tiny_teacher_dir``: real tiny causal LMs (shared tokenizer) in Hugging Face format.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture
def stillhouse_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "stillhouse-home"
    home.mkdir()
    monkeypatch.setenv("STILLHOUSE_HOME", str(home))
    return home


@pytest.fixture
def make_host() -> Iterator[Callable[..., Any]]:
    from stillhouse.kernel import plugins

    previous = plugins._HOST

    def factory(*extra: Any, entry_points: bool = True) -> plugins.PluginHost:
        host = plugins.PluginHost(entry_points=entry_points, plugins=extra)
        plugins.set_host(host)
        return host

    yield factory
    plugins.set_host(previous)


@pytest.fixture(scope="session")
def tiny_tokenizer_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from stillhouse.testing.tiny import build_tiny_tokenizer

    return build_tiny_tokenizer(tmp_path_factory.mktemp("tiny-tokenizer"))


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory, tiny_tokenizer_dir: Path) -> Path:
    """A 2-layer, d=64 student."""
    from stillhouse.testing.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny-student"), tokenizer_dir=tiny_tokenizer_dir, seed=0)


@pytest.fixture(scope="session")
def tiny_teacher_dir(tmp_path_factory: pytest.TempPathFactory, tiny_tokenizer_dir: Path) -> Path:
    """A 4-layer, d=128 teacher sharing the student's tokenizer (for logit distillation)."""
    from stillhouse.testing.tiny import build_tiny_model

    return build_tiny_model(
        tmp_path_factory.mktemp("tiny-teacher"), tokenizer_dir=tiny_tokenizer_dir, layers=4, hidden=128, seed=1
    )
