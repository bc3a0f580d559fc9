"""`still plugin new`: the scaffolded packages import, register the right kind, install with pip,
show up in `still plugins`, and pass their own tests."""

from __future__ import annotations

import ast
import importlib
import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from stillhouse.kernel.errors import UserError
from stillhouse.kernel.interfaces import PLUGIN_KINDS
from stillhouse.kernel.plugins import REGISTRATION_HOOKS
from stillhouse.plugins import scaffold as scaffold_plugin
from stillhouse.plugins.scaffold.command import scaffold
from stillhouse.plugins.scaffold.kinds import KINDS
from stillhouse.plugins.scaffold.render import PluginNames, render_files

ALL_KINDS = sorted(KINDS)


def test_names_are_derived_from_the_given_name():
    names = PluginNames.from_name("my-sentiment")
    assert (names.plugin, names.dist, names.package, names.class_prefix) == (
        "my_sentiment",
        "stillhouse-my-sentiment",
        "stillhouse_my_sentiment",
        "MySentiment",
    )
    assert PluginNames.from_name("stillhouse-focal") == PluginNames.from_name("focal")


@pytest.mark.parametrize("bad", ["My-Plugin", "1st", "has space", "trailing-", "a--b", "", "dots.in.name"])
def test_unusable_names_are_refused_with_a_hint(bad: str):
    with pytest.raises(UserError) as caught:
        PluginNames.from_name(bad)
    assert caught.value.hint and "lowercase" in caught.value.hint


def test_every_template_file_belongs_to_a_kind_and_every_kind_has_its_files():
    """The templates ship as package data: a kind without its files, or a file no kind reads, is a
    packaging mistake that only a user would otherwise find."""
    templates = Path(scaffold_plugin.__file__).parent / "templates"
    found = {p.relative_to(templates).as_posix() for p in templates.rglob("*.tmpl")}
    parts = ("plugin.py", "tests.py", "test_imports.py", "usage.toml")
    expected = {f"{kind}/{part}.tmpl" for kind in KINDS for part in parts}
    expected |= {f"common/{name}.tmpl" for name in ("pyproject.toml", "README.md", "__init__.py", "test_header.py")}
    assert found == expected
    assert set(KINDS) <= set(REGISTRATION_HOOKS)  # each kind is registered through its kernel hook


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_rendered_files_are_complete_python_and_toml(kind: str):
    names = PluginNames.from_name(f"demo-{kind}")
    files = render_files(names, kind)
    assert set(files) == {
        "pyproject.toml",
        "README.md",
        f"{names.package}/__init__.py",
        f"{names.package}/{KINDS[kind].module}.py",
        "tests/test_plugin.py",
    }
    for path, text in files.items():
        assert not re.search(r"\$\{\w+\}", text), f"unfilled placeholder in {path}"
        if path.endswith(".py"):
            ast.parse(text, filename=path)
    project = tomllib.loads(files["pyproject.toml"])
    assert project["project"]["name"] == names.dist
    assert project["project"]["entry-points"]["stillhouse"] == {names.plugin: names.package}
    assert project["tool"]["setuptools"]["packages"] == [names.package]
    readme = files["README.md"]
    assert f"--kind {kind}" in readme and names.plugin in readme and "pip install -e ." in readme


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_scaffolded_package_registers_a_subclass_of_the_right_interface(kind, tmp_path, make_host, monkeypatch):
    make_host(entry_points=False)  # no name clashes to check against
    names, root, written = scaffold(f"demo-{kind}", kind, tmp_path)
    assert root == tmp_path / names.dist and all(p.exists() for p in written)
    monkeypatch.syspath_prepend(str(root))
    package = importlib.import_module(names.package)
    try:
        host = make_host(package, entry_points=False)
        assert not host.failures
        cls = host.get(kind, names.plugin)
        assert issubclass(cls, PLUGIN_KINDS[kind]) and not getattr(cls, "__abstractmethods__", None)
        assert cls.name == names.plugin and cls.description
    finally:
        for module in [m for m in sys.modules if m == names.package or m.startswith(names.package + ".")]:
            del sys.modules[module]


def test_still_plugin_new_writes_the_package_and_says_what_next(tmp_path, make_host, run_still):
    make_host()
    result = run_still("plugin", "new", "word-count", "--kind", "evaluator", "--dir", str(tmp_path))
    assert result.exit_code == 0, result.output
    root = tmp_path / "stillhouse-word-count"
    assert (root / "stillhouse_word_count" / "evaluator.py").exists()
    assert "pip install -e ." in result.output and "still plugins" in result.output

    again = run_still("plugin", "new", "word-count", "--kind", "evaluator", "--dir", str(tmp_path))
    assert again.exit_code == 2 and "already exists" in again.output and "--force" in again.output
    forced = run_still("plugin", "new", "word-count", "--kind", "evaluator", "--dir", str(tmp_path), "--force")
    assert forced.exit_code == 0


def test_a_name_an_installed_plugin_already_uses_is_refused(tmp_path, make_host, run_still):
    make_host()  # the built-ins: the loss 'sft' exists
    result = run_still("plugin", "new", "sft", "--kind", "loss", "--dir", str(tmp_path))
    assert result.exit_code == 2
    assert "already provided by the installed plugin 'losses'" in result.output
    assert not (tmp_path / "stillhouse-sft").exists()


def test_an_unknown_kind_is_a_usage_error(tmp_path, run_still, make_host):
    make_host(scaffold_plugin, entry_points=False)  # the command, and no installed plugin to clash with
    result = run_still("plugin", "new", "x", "--kind", "tokenizer", "--dir", str(tmp_path))
    assert result.exit_code == 2 and "tokenizer" in result.output


# -- installed for real -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Path]]:
    """Every kind scaffolded by the CLI and pip-installed into one target folder (a separate
    site-packages: nothing touches the project's environment)."""
    base = tmp_path_factory.mktemp("scaffolded")
    roots = {}
    for kind in ALL_KINDS:
        subprocess.run(
            [sys.executable, "-m", "stillhouse.kernel.cli", "plugin", "new", f"demo-{kind}", "--kind", kind, "--dir", str(base)],
            check=True,
            capture_output=True,
        )
        roots[kind] = base / f"stillhouse-demo-{kind}"
    target = base / "site"
    pip = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--target", str(target)]
    done = subprocess.run([*pip, *map(str, roots.values())], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return target, roots


def _env(target: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("STILLHOUSE_PLUGINS", "STILLHOUSE_DISABLE_PLUGINS")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(target), env.get("PYTHONPATH")]))
    return env


@pytest.mark.slow
def test_installed_scaffolds_show_up_in_still_plugins(installed):
    target, _ = installed
    done = subprocess.run(
        [sys.executable, "-m", "stillhouse.kernel.cli", "plugins", "--json"],
        capture_output=True,
        text=True,
        env=_env(target),
        check=True,
    )
    listing = json.loads(done.stdout)
    rows = {row["name"]: row for row in listing["plugins"]}
    for kind in ALL_KINDS:
        row = rows[f"demo_{kind}"]
        assert row["package"] == f"stillhouse-demo-{kind}" and row["version"] == "0.1.0" and not row["builtin"]
        assert row["provides"] == {kind: [f"demo_{kind}"]}
    assert not [f for f in listing["failures"] if f["name"].startswith("demo_")]


@pytest.mark.slow
@pytest.mark.parametrize("kind", ALL_KINDS)
def test_scaffolded_package_passes_its_own_tests(installed, kind):
    target, roots = installed
    root = roots[kind]
    expected = len(re.findall(r"^def test_", (root / "tests" / "test_plugin.py").read_text(), flags=re.M))
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "error::pytest.PytestUnknownMarkWarning"],
        cwd=root,
        capture_output=True,
        text=True,
        env=_env(target),
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    # every test ran and passed: none skipped or deselected away
    assert re.search(rf"\b{expected} passed\b", done.stdout), done.stdout[-2000:]
    assert "skipped" not in done.stdout
