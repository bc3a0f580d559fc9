"""The package is typed (PEP 561) and ships its data: every package of the ``stillhouse``
namespace has a ``py.typed`` marker, and the built wheel carries it and the scaffold's templates."""

from __future__ import annotations

import fnmatch
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SETUPTOOLS = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
# the namespace's top-level packages: stillhouse.kernel, stillhouse.plugins ... (each one a folder)
TOP_LEVEL = sorted(SETUPTOOLS["package-dir"])


def test_every_top_level_package_is_listed_and_marked_typed():
    assert set(TOP_LEVEL) <= set(SETUPTOOLS["packages"])
    for package in TOP_LEVEL:
        folder = ROOT / SETUPTOOLS["package-dir"][package]
        assert (folder / "py.typed").is_file(), f"{folder}/py.typed is missing"
        patterns = SETUPTOOLS["package-data"].get(package, [])
        assert any(fnmatch.fnmatch("py.typed", p) for p in patterns), f"package-data of {package} does not ship py.typed"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel, built from a copy of the sources (the checkout gets no build folders)."""
    base = tmp_path_factory.mktemp("wheel")
    source = base / "src"
    source.mkdir()
    for folder in sorted(set(SETUPTOOLS["package-dir"].values())):
        shutil.copytree(ROOT / folder, source / folder, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    pip = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(base / "out")]
    done = subprocess.run([*pip, str(source)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    (built,) = (base / "out").glob("stillhouse-*.whl")
    return built


@pytest.mark.slow
def test_the_wheel_ships_the_markers_and_the_scaffold_templates(wheel, tmp_path):
    names = set(zipfile.ZipFile(wheel).namelist())
    for package in TOP_LEVEL:
        assert package.replace(".", "/") + "/py.typed" in names
    templates = ROOT / "plugins" / "scaffold" / "templates"
    shipped = {n for n in names if n.startswith("stillhouse/plugins/scaffold/templates/")}
    assert shipped == {"stillhouse/plugins/scaffold/templates/" + p.relative_to(templates).as_posix() for p in templates.rglob("*.tmpl")}

    # installed from the wheel (not the checkout), the scaffold renders a package from its templates
    target = tmp_path / "site"
    install = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(wheel)]
    subprocess.run(install, check=True, capture_output=True)
    script = (
        "import stillhouse.plugins.scaffold as s; from stillhouse.plugins.scaffold.render import PluginNames, render_files; "
        "print(s.__file__); print(len(render_files(PluginNames.from_name('x'), 'loss')))"
    )
    env = {**os.environ, "PYTHONPATH": str(target)}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, check=True)
    location, count = done.stdout.split()
    assert Path(location).is_relative_to(target) and count == "5"
