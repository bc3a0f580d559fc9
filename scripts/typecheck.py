"""Type-check the package with mypy: ``python scripts/typecheck.py [mypy args]``.

mypy cannot follow setuptools' package-dir, so it runs over the link tree of ``linktree.py``
under ``build/typecheck``. Errors are reported with the real paths.
"""

from __future__ import annotations

import os
import subprocess
import sys

from linktree import ROOT, link_tree

CHECKED = ("stillhouse.kernel", "stillhouse.registry", "stillhouse.plugins")


def main() -> int:
    tree = link_tree(ROOT / "build" / "typecheck")
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
