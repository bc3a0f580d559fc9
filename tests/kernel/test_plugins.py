"""Plugin discovery through real entry points, isolation of broken plugins, loading controls."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from stillhouse.kernel import plugins as plugins_module
from stillhouse.kernel.cli import build_cli
from stillhouse.kernel.errors import UnknownPluginError
from stillhouse.kernel.plugins import PluginHost

GOOD = '''
from stillhouse.kernel import hookimpl
from stillhouse.kernel.interfaces import Evaluator, Metric


class CountAnswers(Evaluator):
    name = "count_answers"

    def evaluate(self, subject):
        return [Metric("answers", float(len(subject.answers)), len(subject.answers))]


@hookimpl
def register_evaluators(register):
    register(CountAnswers)
'''

BROKEN_IMPORT = "import not_a_module_anywhere\n"

BROKEN_REGISTER = '''
from stillhouse.kernel import hookimpl


@hookimpl
def register_tasks(register):
    raise RuntimeError("database of labels unreachable")
'''

DUPLICATE = '''
from stillhouse.kernel import hookimpl
from tests.kernel.fakes import EchoTask


class AnotherEcho(EchoTask):
    name = "echo"


@hookimpl
def register_tasks(register):
    register(AnotherEcho)
'''


def install_distribution(site: Path, dist: str, version: str, modules: dict[str, str]) -> None:
    """Write a real installed distribution (dist-info with entry points) into a sys.path folder."""
    info = site / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    lines = ["[stillhouse]"] + [f"{name} = {name}_module" for name in modules]
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n")
    for name, source in modules.items():
        (site / f"{name}_module.py").write_text(textwrap.dedent(source))


@pytest.fixture
def site(tmp_path, monkeypatch):
    site = tmp_path / "site"
    site.mkdir()
    install_distribution(site, "acme-stillhouse", "1.2.3", {"acme": GOOD, "brokenimport": BROKEN_IMPORT, "brokenregister": BROKEN_REGISTER})
    monkeypatch.syspath_prepend(str(site))
    for name in ("acme_module", "brokenimport_module", "brokenregister_module"):
        sys.modules.pop(name, None)
    return site


def test_third_party_plugin_is_discovered_through_its_entry_point(site, monkeypatch):
    monkeypatch.delenv("STILLHOUSE_PLUGINS", raising=False)
    host = PluginHost()
    assert "count_answers" in host.names("evaluator")
    row = next(r for r in host.describe() if r["name"] == "acme")
    assert row["package"] == "acme-stillhouse" and row["version"] == "1.2.3" and not row["builtin"]
    assert row["hooks"] == ["register_evaluators"] and row["provides"] == {"evaluator": ["count_answers"]}


def test_broken_plugins_are_reported_by_name_and_isolated(site, monkeypatch):
    monkeypatch.delenv("STILLHOUSE_PLUGINS", raising=False)
    host = PluginHost()
    failures = {f.name: f for f in host.failures}
    assert failures["brokenimport"].package == "acme-stillhouse"
    assert "ModuleNotFoundError" in failures["brokenimport"].error and failures["brokenimport"].stage == "import"
    assert "database of labels unreachable" in failures["brokenregister"].error
    assert "count_answers" in host.names("evaluator")  # the good plugin of the same package still works


def test_plugins_command_lists_plugins_and_failures(site, monkeypatch):
    monkeypatch.delenv("STILLHOUSE_PLUGINS", raising=False)
    host = PluginHost()
    # `still plugins` reads the process-wide host: an earlier test that ran `main()` in this process
    # has cached one made before this test's site existed
    monkeypatch.setattr(plugins_module, "_HOST", host)
    result = CliRunner().invoke(build_cli(host), ["plugins", "--json"])
    data = json.loads(result.output)
    assert any(p["name"] == "acme" for p in data["plugins"])
    assert {f["name"] for f in data["failures"]} >= {"brokenimport", "brokenregister"}
    text = CliRunner().invoke(build_cli(host), ["plugins"])
    assert "BROKEN brokenimport (acme-stillhouse)" in text.output


def test_stillhouse_plugins_env_limits_third_party_plugins(site, monkeypatch):
    monkeypatch.setenv("STILLHOUSE_PLUGINS", "")
    host = PluginHost()
    assert "acme" not in host.sources and not any(f.name.startswith("broken") for f in host.failures)
    monkeypatch.setenv("STILLHOUSE_PLUGINS", "acme")
    host = PluginHost()
    assert "acme" in host.sources and not any(f.name.startswith("broken") for f in host.failures)


def test_disable_env_blocks_named_plugins(site, monkeypatch):
    monkeypatch.delenv("STILLHOUSE_PLUGINS", raising=False)
    monkeypatch.setenv("STILLHOUSE_DISABLE_PLUGINS", "acme,brokenimport")
    host = PluginHost()
    assert "acme" not in host.sources and "brokenimport" not in {f.name for f in host.failures}


def test_duplicate_names_are_refused(make_host):
    from tests.kernel import fakes

    module = type(sys)("duplicate_echo")
    exec(DUPLICATE, module.__dict__)
    host = make_host(fakes, module, entry_points=False)
    duplicate = [f for f in host.failures if f.stage == "duplicate"]
    assert len(duplicate) == 1 and "task name 'echo' is already registered" in duplicate[0].error
    assert host.get("task", "echo") is fakes.EchoTask


def test_unknown_plugin_error_lists_known_and_broken(site, monkeypatch):
    monkeypatch.delenv("STILLHOUSE_PLUGINS", raising=False)
    host = PluginHost()
    with pytest.raises(UnknownPluginError) as info:
        host.get("evaluator", "count_answer")
    assert info.value.hint == "did you mean 'count_answers'?"
    assert any("brokenimport" in d for d in info.value.details)


def test_help_and_plugins_do_not_import_heavy_libraries():
    code = textwrap.dedent(
        """
        import sys
        from stillhouse.kernel.cli import main
        for args in (["--help"], ["plugins"], ["run", "--help"]):
            try:
                main(args)
            except SystemExit:
                pass
        heavy = [m for m in ("torch", "transformers", "litellm", "textual", "duckdb", "rouge_score", "sacrebleu") if m in sys.modules]
        print("HEAVY=" + ",".join(heavy))
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert "HEAVY=" in out.stdout, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "HEAVY="
