"""The teacher engine: what every call-based teacher gets without writing it.

A teacher plugin subclasses :class:`CallTeacher` and implements one call, ``complete`` or
``acomplete``; the engine here adds the response cache, concurrency, rpm/tpm limits, retries with
backoff, the budget, cost accounting and resumability. Nothing here imports litellm (or any HTTP
client): a teacher brings its own.
"""

from __future__ import annotations

from stillhouse.kernel.teaching.config import CallTeacherConfig, HttpTeacherConfig, PriceConfig
from stillhouse.kernel.teaching.pricing import Price
from stillhouse.kernel.teaching.replies import FATAL, RETRYABLE, Call, Failure, Reply, classify_exception
from stillhouse.kernel.teaching.teacher import CallTeacher

__all__ = [
    "FATAL",
    "RETRYABLE",
    "Call",
    "CallTeacher",
    "CallTeacherConfig",
    "HttpTeacherConfig",
    "Failure",
    "Price",
    "PriceConfig",
    "Reply",
    "classify_exception",
]
