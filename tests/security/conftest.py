"""Fixtures for the security tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from stillhouse.kernel import secrets


@pytest.fixture(autouse=True)
def _forget_secrets() -> Iterator[None]:
    """Secrets remembered by an in-process run must not leak into the next test's redaction."""
    yield
    secrets.forget_all()


