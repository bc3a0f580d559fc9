"""A tree of links with the import layout, for tools that cannot follow setuptools' package-dir.

The import names (``stillhouse.kernel``) map onto top-level folders (``kernel/``) through
``[tool.setuptools.package-dir]``; mypy and import-linter look for ``stillhouse/kernel/``. So
``link_tree(tree)`` makes ``tree/stillhouse/<folder>`` a link to each folder, and a tool run with
``tree`` first on its path sees the package as it is installed.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE_DIR: dict[str, str] = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
"""``stillhouse.kernel`` -> ``kernel`` ...: the one place the mapping is written."""


def link_tree(tree: Path, source: Path = ROOT) -> Path:
    """Link ``tree/stillhouse/<name>`` to its folder in ``source`` for each package of package-dir; returns ``tree``.

    ``source`` is the checkout by default; a test passes a copy to check a changed tree."""
    package = tree / "stillhouse"
    package.mkdir(parents=True, exist_ok=True)
    for name, folder in PACKAGE_DIR.items():
        link = package / name.removeprefix("stillhouse.")
        if link.is_symlink() and link.resolve() != (source / folder).resolve():
            link.unlink()
        if not link.is_symlink():
            link.symlink_to(source / folder, target_is_directory=True)
    return tree
