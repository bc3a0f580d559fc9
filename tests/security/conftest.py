"""Fixtures for the security tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from stillhouse.kernel import secrets
from stillhouse.testing.fake_openai import FakeBehaviour, FakeOpenAIServer


@pytest.fixture(autouse=True)
def _forget_secrets() -> Iterator[None]:
    """Secrets remembered by an in-process run must not leak into the next test's redaction."""
    yield
    secrets.forget_all()


@pytest.fixture
def fake_server() -> Iterator[Callable[..., FakeOpenAIServer]]:
    """``fake_server(latency_s=0.1, ...)`` starts a FakeOpenAIServer with that behaviour."""
    servers: list[FakeOpenAIServer] = []

    def start(**behaviour: Any) -> FakeOpenAIServer:
        server = FakeOpenAIServer(FakeBehaviour(**behaviour)).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()
