"""stillhouse-sentiment: a third-party Stillhouse plugin.

Provides the ``sentiment`` task type and the ``label_smoothed_sft`` loss. Stillhouse loads this
module through the ``stillhouse`` entry point (see pyproject.toml) and calls the hooks below. The
plugin classes are imported inside the hooks so that ``still --help`` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from stillhouse.kernel import hookimpl

DATA_DIR = Path(__file__).parent / "data"
"""Hand-written sample reviews shipped with the package (see data/README.md)."""


@hookimpl
def register_tasks(register: Any) -> None:
    from stillhouse_sentiment.task import SentimentTask

    register(SentimentTask)


@hookimpl
def register_losses(register: Any) -> None:
    from stillhouse_sentiment.loss import LabelSmoothedSft

    register(LabelSmoothedSft)
