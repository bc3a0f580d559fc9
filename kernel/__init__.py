"""The Stillhouse kernel: hook specs, plugin host, config models, pipeline orchestration, run folders.

Importing this package stays light (no torch, transformers, litellm or textual).
"""

from __future__ import annotations

from typing import Any

from stillhouse.kernel.hookspecs import hookimpl

__version__ = "0.1.0"

__all__ = ["hookimpl", "DistillationJob", "__version__"]


def __getattr__(name: str) -> Any:
    if name == "DistillationJob":
        from stillhouse.kernel.job import DistillationJob

        return DistillationJob
    raise AttributeError(name)
