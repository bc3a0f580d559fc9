"""Type-check the package with mypy: ``python scripts/typecheck.py [mypy args]``.

The import names (``stillhouse.kernel``) map onto top-level folders (``kernel/``) through
setuptools' package-dir, which mypy cannot follow; so this builds a tree of links with the import
layout under ``build/typecheck`` and points mypy at it. Errors are reported with the real paths.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FOLDERS = ("kernel", "plugins", "registry", "tui", "testing")
CHECKED = ("stillhouse.kernel", "stillhouse.registry", "stillhouse.plugins")


def link_tree() -> Path:
    tree = ROOT / "build" / "typecheck"
    package = tree / "stillhouse"
    package.mkdir(parents=True, exist_ok=True)
    for folder in FOLDERS:
        link = package / folder
        if not link.is_symlink():
            link.symlink_to(ROOT / folder, target_is_directory=True)
    return tree


def main() -> int:
    tree = link_tree()
    args = [sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml")]
    args += [a for p in CHECKED for a in ("-p", p)] + sys.argv[1:]
    done = subprocess.run(args, cwd=tree, env={**os.environ, "MYPYPATH": str(tree)}, capture_output=True, text=True)
    prefix = "stillhouse/"
    for line in (done.stdout + done.stderr).splitlines():  # report the files where they really are
        if line.startswith(prefix):
            line = line[len(prefix) :]
        print(line)
    return done.returncode


if __name__ == "__main__":
    raise SystemExit(main())
