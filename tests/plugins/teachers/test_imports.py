"""The teachers package stays light to import: ``still --help`` loads it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

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


def test_the_kernel_engine_runs_a_teacher_without_litellm():
    """The kernel imports no litellm (nor the OpenAI SDK): not its modules, and not a generation
    through the engine with a teacher that needs neither."""
    code = (
        "import pkgutil, importlib, sys\n"
        "import stillhouse.kernel\n"
        "for module in pkgutil.walk_packages(stillhouse.kernel.__path__, 'stillhouse.kernel.'):\n"
        "    importlib.import_module(module.name)\n"
        "from stillhouse.kernel.interfaces import TeacherRequest\n"
        "from tests.plugins.teachers.third_party import ScriptedTeacher\n"
        "teacher = ScriptedTeacher(ScriptedTeacher.Config(model='m'))\n"
        "results = []\n"
        "teacher.generate([TeacherRequest('a', [{'role': 'user', 'content': 'hi'}])], results.append, cache_dir=None)\n"
        "teacher.close()\n"
        "assert results[0].ok, results\n"
        "print(','.join(m for m in ('litellm', 'openai') if m in sys.modules))\n"
    )
    root = Path(__file__).parents[3]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root)
    assert out.stdout.strip() == ""
