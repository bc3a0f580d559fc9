from __future__ import annotations

import pytest
from click.testing import CliRunner

import stillhouse.plugins.exporters as exporters_plugin
import stillhouse.plugins.reports as reports_plugin
from tests.plugins.reports.conftest import CONFIG, RUN_ID, write_run


@pytest.fixture
def still(make_host):
    """The real `still` CLI with the export and eval commands (and any extra plugin) added."""
    from stillhouse.kernel.cli import build_cli

    def invoke(*args: str, plugins: tuple = ()):
        group = build_cli(make_host(reports_plugin, exporters_plugin, *plugins, entry_points=False))
        return CliRunner().invoke(group, list(args))

    return invoke


@pytest.fixture
def student_run(stillhouse_home, tiny_model_dir):
    """A finished run whose distilled student is the tiny llama model."""
    return write_run(
        stillhouse_home / "runs" / RUN_ID, tiny_model_dir, {**CONFIG, "student": {"model": str(tiny_model_dir)}}
    )


@pytest.fixture
def exports(tmp_path):
    """An empty folder for export destinations, apart from the Stillhouse home (also in tmp_path),
    so a test can check that a failed export left nothing in it."""
    path = tmp_path / "exports"
    path.mkdir()
    return path
