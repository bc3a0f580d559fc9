"""The files of a new plugin package, rendered from the ``templates/`` folder (pure: writes nothing).

Templates are ``string.Template`` texts. Placeholders: ``plugin`` (entry-point and registered
name), ``dist`` (distribution name), ``package`` (import name), ``Class`` (class name prefix),
``cls`` (the plugin class), ``kind``, ``hook``, ``module`` (the plugin module's name), ``summary``,
``version`` (Stillhouse's). ``$$`` is a literal ``$``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib.resources import files
from string import Template

from stillhouse.kernel import __version__
from stillhouse.kernel.errors import UserError
from stillhouse.kernel.plugins import REGISTRATION_HOOKS
from stillhouse.plugins.scaffold.kinds import KINDS

NAME_PATTERN = re.compile(r"^[a-z][a-z0-9]*(?:[-_][a-z0-9]+)*$")


@dataclass(frozen=True)
class PluginNames:
    """Every name a new plugin package needs, derived from the one the user gave."""

    plugin: str
    """Entry-point name and registered name, e.g. ``my_sentiment``."""
    dist: str
    """Distribution (pip) name, e.g. ``stillhouse-my-sentiment``."""
    package: str
    """Import name, e.g. ``stillhouse_my_sentiment``."""
    class_prefix: str
    """e.g. ``MySentiment``."""

    @classmethod
    def from_name(cls, name: str) -> PluginNames:
        if not NAME_PATTERN.match(name):
            raise UserError(
                f"'{name}' is not a usable plugin name",
                hint="use lowercase letters, digits, '-' or '_', starting with a letter (e.g. my-sentiment)",
            )
        base = re.sub(r"^stillhouse[-_]", "", name)
        words = re.split(r"[-_]", base)
        return cls(
            plugin="_".join(words),
            dist="stillhouse-" + "-".join(words),
            package="stillhouse_" + "_".join(words),
            class_prefix="".join(w.capitalize() for w in words),
        )


def template(folder: str, name: str) -> Template:
    """``templates/<folder>/<name>.tmpl``, read from the installed package (works from a wheel)."""
    return Template((files(__package__) / "templates" / folder / f"{name}.tmpl").read_text(encoding="utf-8"))


def sorted_imports(lines: list[str]) -> str:
    """One import block in isort's order (``import x`` lines first, then ``from x import``), so
    the generated tests pass the linters authors are likely to run."""
    lines = [line for line in lines if line.strip()]
    return "\n".join(sorted(lines, key=lambda line: (line.startswith("from "), line.split()[1])))


def render_files(names: PluginNames, kind: str) -> dict[str, str]:
    """Relative path -> content of every file of the package."""
    spec = KINDS[kind]
    values = {
        "plugin": names.plugin,
        "dist": names.dist,
        "package": names.package,
        "Class": names.class_prefix,
        "cls": names.class_prefix + spec.suffix,
        "kind": kind,
        "hook": REGISTRATION_HOOKS[kind],
        "module": spec.module,
        "summary": spec.summary,
        "version": __version__,
    }
    usage = template(kind, "usage.toml").substitute(values)
    test_imports = template(kind, "test_imports.py").template.splitlines()
    imports = sorted_imports(["import pytest", "from pydantic import ValidationError", *test_imports])
    return {
        "pyproject.toml": template("common", "pyproject.toml").substitute(values),
        "README.md": template("common", "README.md").substitute(values, usage=usage),
        f"{names.package}/__init__.py": template("common", "__init__.py").substitute(values),
        f"{names.package}/{spec.module}.py": template(kind, "plugin.py").substitute(values),
        "tests/test_plugin.py": template("common", "test_header.py").substitute(values, third_party_imports=imports)
        + template(kind, "tests.py").substitute(values),
    }
