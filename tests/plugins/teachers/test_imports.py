"""The teachers package stays light to import: ``still --help`` loads it."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("litellm", "torch", "transformers", "aiohttp", "openai")


def test_registering_the_teacher_and_serve_command_imports_nothing_heavy():
    code = (
        "import sys, click\n"
        "from stillhouse.plugins import teachers\n"
        "found = []\n"
        "teachers.register_teachers(found.append)\n"
        "teachers.register_commands(click.Group())\n"
        "assert [c.name for c in found] == ['litellm'], found\n"
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
