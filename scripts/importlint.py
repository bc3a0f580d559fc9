"""Check the layering contracts of ``[tool.importlinter]``: ``python scripts/importlint.py``.

lint-imports runs over the link tree of ``linktree.py`` (under ``build/importlint``), since it
cannot follow setuptools' package-dir. Contracts listed in ``[tool.stillhouse.importlint] pending``
are checked and reported but do not fail the check: a contract the code does not meet yet, written
down so that switching it on is deleting one line. ``--source DIR`` checks a copy of the checkout.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

from linktree import ROOT, link_tree

CONFIG = ROOT / "pyproject.toml"


def contract_ids(config: dict) -> tuple[list[str], list[str]]:
    """(enforced, pending) contract ids; a pending id that names no contract is a mistake."""
    ids = [contract["id"] for contract in config["tool"]["importlinter"]["contracts"]]
    pending = config["tool"].get("stillhouse", {}).get("importlint", {}).get("pending", [])
    unknown = sorted(set(pending) - set(ids))
    if unknown:
        raise SystemExit(f"[tool.stillhouse.importlint] pending names no contract: {', '.join(unknown)}")
    return [i for i in ids if i not in pending], list(pending)


def lint_imports(tree: Path, ids: list[str]) -> subprocess.CompletedProcess[str]:
    """lint-imports limited to ``ids``, with the link tree first on the import path."""
    # the console script's body: import-linter has no ``python -m`` entry
    run = "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"
    command = [sys.executable, "-c", run, str(CONFIG), "--no-logo", "--no-cache"]
    command += [arg for i in ids for arg in ("--contract", i)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(tree), os.environ.get("PYTHONPATH")]))}
    return subprocess.run(command, cwd=tree, env=env, capture_output=True, text=True)


def check(tree: Path) -> int:
    enforced, pending = contract_ids(tomllib.loads(CONFIG.read_text()))
    done = lint_imports(tree, enforced)
    print(done.stdout + done.stderr, end="")
    if pending:
        waiting = lint_imports(tree, pending)
        print(f"\nPending contracts (reported, not enforced yet): {', '.join(pending)}")
        print(waiting.stdout + waiting.stderr, end="")
    return done.returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, help="check this copy of the checkout instead (its package folders)")
    args = parser.parse_args(argv)
    if args.source is None:
        return check(link_tree(ROOT / "build" / "importlint"))
    with tempfile.TemporaryDirectory(prefix="importlint-") as tree:
        return check(link_tree(Path(tree), source=args.source.resolve()))


if __name__ == "__main__":
    raise SystemExit(main())
