"""The layering contracts of ``[tool.importlinter]`` hold, and they bite: an import that breaks one,
planted in a copy of the package folder, fails ``scripts/importlint.py`` with the import named."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "importlint.py"
CONFIG = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]
FOLDERS = sorted(CONFIG["setuptools"]["package-dir"].values())


def importlint(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=300)


def source_with(tmp_path: Path, folder: str, module: str, code: str) -> Path:
    """A checkout whose ``folder`` is a copy holding one more module; the other folders are links."""
    source = tmp_path / "checkout"
    source.mkdir()
    for name in FOLDERS:
        if name == folder:
            shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            (source / name).symlink_to(ROOT / name, target_is_directory=True)
    (source / folder / f"{module}.py").write_text(code)
    return source


def test_the_checkout_keeps_every_enforced_contract():
    done = importlint()
    assert done.returncode == 0, done.stdout + done.stderr
    assert " broken" in done.stdout and "0 broken" in done.stdout.split("Pending contracts")[0]


# one planted import per contract: (folder, the import, the import as reported)
VIOLATIONS = {
    "kernel-imports-no-part": ("kernel", "from stillhouse.registry import db", "stillhouse.kernel.planted -> stillhouse.registry.db"),
    "plugins-import-no-tui": ("plugins", "import stillhouse.tui.app", "stillhouse.plugins.planted -> stillhouse.tui.app"),
    "registry-imports-no-tui-or-plugins": ("registry", "from stillhouse.plugins import losses", "stillhouse.registry.planted -> stillhouse.plugins.losses"),
    "textual-only-in-tui": ("registry", "from textual.app import App", "stillhouse.registry.planted -> textual"),
    "tui-reaches-registry-through-queries": ("tui", "from stillhouse.registry import db", "stillhouse.tui.planted -> stillhouse.registry.db"),
}
CONTRACTS = {contract["id"]: contract for contract in CONFIG["importlinter"]["contracts"]}
PENDING = set(CONFIG["stillhouse"]["importlint"]["pending"])


def test_every_contract_has_a_planted_violation():
    """A contract added to pyproject without a test here could be written so that it never fails."""
    assert set(CONTRACTS) == set(VIOLATIONS) and PENDING <= set(CONTRACTS)


@pytest.mark.parametrize("contract", sorted(VIOLATIONS))
def test_a_planted_import_breaks_its_contract(contract, tmp_path):
    """Enforced contracts fail the check; a pending one (not met by the code yet) is reported only."""
    folder, line, reported = VIOLATIONS[contract]
    done = importlint("--source", str(source_with(tmp_path, folder, "planted", line + "\n")))
    enforced, _, pending = done.stdout.partition("Pending contracts")
    section = pending if contract in PENDING else enforced
    assert f"{CONTRACTS[contract]['name']} BROKEN" in section and reported in section, done.stdout + done.stderr
    assert done.returncode == (0 if contract in PENDING else 1)
