"""pytest fixtures for Stillhouse and its plugin authors (registered through the pytest11 entry point).

- ``stillhouse_home``: a temporary ``$STILLHOUSE_HOME``, set for the test.
- ``make_host``: build an isolated PluginHost with extra plugins; it becomes the process host for the test.
- ``run_still``: run ``still ARGS`` in-process against the current plugin host; returns click's Result.
- ``tiny_model_dir`` / ``tiny_teacher_dir``: real tiny causal LMs (shared tokenizer) in Hugging Face format.
- ``local_teacher``: a ``[teacher]`` config dict for the tiny teacher as a local ``hf/`` model.
- ``openai_server``: the tiny teacher behind ``still serve`` on 127.0.0.1; yields its api_base.
- ``fake_server``: ``fake_server(**behaviour)`` starts a scriptable fake OpenAI-compatible server (faults, latency, an oracle).
- ``write_pipeline``: write JSONL data and a pipeline TOML file that ``still run`` accepts.

It also registers the ``slow`` marker, so plugin suites can use it under ``--strict-markers``.
docs/plugins.md documents every fixture; a test keeps the two in step.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:  # pragma: no cover - typing only
    from click.testing import Result


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: real-model or multi-process tests (still run in CI)")


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


@pytest.fixture
def run_still() -> Callable[..., Result]:
    """``run_still("plugins", "--json")``: the CLI in-process, with every plugin's commands, against
    the process host (the one ``make_host`` installed, else the entry-point host)."""
    from click.testing import CliRunner

    from stillhouse.kernel.cli import build_cli

    def invoke(*args: str, input: str | None = None, env: dict[str, str] | None = None) -> Result:
        # catch_exceptions=False: an unexpected error fails the test with its own traceback
        return CliRunner().invoke(build_cli(), list(args), input=input, env=env, catch_exceptions=False)

    return invoke


@pytest.fixture
def local_teacher(tiny_teacher_dir: Path) -> dict[str, Any]:
    """A ``[teacher]`` section for the tiny teacher run in-process as a local ``hf/`` model.

    Greedy and short, so generation over a few dozen prompts takes seconds on a CPU. A fresh dict
    per test: change it freely."""
    return {
        "backend": "litellm",
        "model": f"hf/{tiny_teacher_dir}",
        "temperature": 0.0,
        "max_tokens": 16,
        "batch_size": 8,
        "concurrency": 1,
    }


@pytest.fixture
def write_pipeline(tmp_path: Path) -> Callable[..., Path]:
    """``write_pipeline(task="sentiment", train=rows, test=rows, teacher={...}, student={...},
    train_options={...}, **sections)`` -> the path of a pipeline TOML file.

    Rows are written as JSONL next to it (``data/<split>.jsonl``); every other keyword becomes a
    top-level key or table of the config (``evaluate={"limit": 4}``, ``task_options={...}``).
    ``train_options`` is the ``[train]`` table (``train`` names the data split)."""
    from stillhouse.kernel.config import to_toml

    counter = iter(range(1_000_000))

    def write(
        *,
        task: str,
        train: list[dict[str, Any]],
        teacher: dict[str, Any],
        student: dict[str, Any],
        validation: list[dict[str, Any]] | None = None,
        test: list[dict[str, Any]] | None = None,
        train_options: dict[str, Any] | None = None,
        data_options: dict[str, Any] | None = None,
        **sections: Any,
    ) -> Path:
        folder = tmp_path / f"pipeline-{next(counter)}"
        (folder / "data").mkdir(parents=True)
        data: dict[str, Any] = dict(data_options or {})
        for split, rows in (("train", train), ("validation", validation), ("test", test)):
            if rows is None:
                continue
            path = folder / "data" / f"{split}.jsonl"
            path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
            data[split] = f"data/{split}.jsonl"
        config: dict[str, Any] = {"task": task, **sections, "data": data, "teacher": teacher, "student": student}
        if train_options:
            config["train"] = train_options
        path = folder / "pipeline.toml"
        path.write_text(to_toml(config), encoding="utf-8")
        return path

    return write


SERVE_TIMEOUT_S = 180.0
"""Loading torch and the model on a busy 2-core machine can take a while; beyond this it is broken."""


@pytest.fixture(scope="session")
def openai_server(tiny_teacher_dir: Path) -> Iterator[str]:
    """The tiny teacher behind ``still serve`` (an OpenAI-compatible API) on 127.0.0.1, in a child
    process for the test session. Yields its ``api_base``, ``http://127.0.0.1:PORT/v1``; the model
    id clients send is ``tiny-teacher``."""
    from stillhouse.testing.serving import serve_model

    with serve_model(tiny_teacher_dir, "--device", "cpu", "--name", "tiny-teacher", start_timeout=SERVE_TIMEOUT_S) as api_base:
        yield api_base


@pytest.fixture
def fake_server() -> Iterator[Callable[..., Any]]:
    """``fake_server(fault_rate=0.3, ...)`` starts a :class:`stillhouse.testing.fake_openai.FakeOpenAIServer`
    on 127.0.0.1 with that :class:`FakeBehaviour`; every server started is stopped after the test."""
    from stillhouse.testing.fake_openai import FakeBehaviour, FakeOpenAIServer

    servers: list[FakeOpenAIServer] = []

    def start(**behaviour: Any) -> FakeOpenAIServer:
        server = FakeOpenAIServer(FakeBehaviour(**behaviour)).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()
