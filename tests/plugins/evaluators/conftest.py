"""Fixtures for the evaluator tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.plugins.evaluators.helpers import TinyChatModel


@pytest.fixture(scope="module")
def tiny_chat(tiny_model_dir: Path) -> TinyChatModel:
    return TinyChatModel(tiny_model_dir)
