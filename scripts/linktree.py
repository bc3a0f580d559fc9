"""A tree of links with the import layout, for tools that cannot follow setuptools' package-dir.

The import names (``stillhouse.kernel``) map onto top-level folders (``kernel/``) through
``[tool.setuptools.package-dir]``; mypy and import-linter look for ``stillhouse/kernel/``. So
``link_tree(tree)`` makes ``tree/stillhouse/<folder>`` a link to each folder, and a tool run with
``tree`` first on its path sees the package as it is installed.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FOLDERS = ("kernel", "plugins", "registry", "tui", "testing")
"""The folders of ``stillhouse.<folder>``, as [tool.setuptools.package-dir] maps them."""


def link_tree(tree: Path, source: Path = ROOT) -> Path:
    """Link ``tree/stillhouse/<folder>`` to ``source/<folder>`` for every package folder; returns ``tree``.

    ``source`` is the checkout by default; a test passes a copy to check a changed tree."""
    package = tree / "stillhouse"
    package.mkdir(parents=True, exist_ok=True)
    for folder in FOLDERS:
        link = package / folder
        if link.is_symlink() and link.resolve() != (source / folder).resolve():
            link.unlink()
        if not link.is_symlink():
            link.symlink_to(source / folder, target_is_directory=True)
    return tree
