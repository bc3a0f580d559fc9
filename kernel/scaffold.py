"""``still plugin new NAME --kind KIND``: write an installable plugin package to start from.

The package has a pyproject with the ``stillhouse`` entry point, a working minimal plugin of the
kind, a README, and tests that use the ``stillhouse.testing`` fixtures and pass as generated. The
texts are in ``kernel.scaffold_templates``; this module names things, checks and writes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from string import Template

import click

from stillhouse.kernel import __version__
from stillhouse.kernel.errors import UserError
from stillhouse.kernel.plugins import REGISTRATION_HOOKS
from stillhouse.kernel.scaffold_templates import INIT, KINDS, PYPROJECT, README, TEST_HEADER, KindTemplate

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


def sorted_imports(lines: list[str]) -> str:
    """One import block in isort's order (``import x`` lines first, then ``from x import``), so
    the generated tests pass the linters authors are likely to run."""
    lines = [line for line in lines if line.strip()]
    return "\n".join(sorted(lines, key=lambda line: (line.startswith("from "), line.split()[1])))


def render_files(names: PluginNames, kind: str) -> dict[str, str]:
    """Relative path -> content of every file of the package (pure: writes nothing)."""
    template: KindTemplate = KINDS[kind]
    values = {
        "plugin": names.plugin,
        "dist": names.dist,
        "package": names.package,
        "Class": names.class_prefix,
        "cls": names.class_prefix + template.suffix,
        "kind": kind,
        "hook": REGISTRATION_HOOKS[kind],
        "module": template.module,
        "summary": template.summary,
        "version": __version__,
    }
    usage = Template(template.usage).substitute(values)
    imports = sorted_imports(["import pytest", "from pydantic import ValidationError", *template.test_imports.splitlines()])
    return {
        "pyproject.toml": Template(PYPROJECT).substitute(values),
        "README.md": Template(README).substitute(values, usage=usage),
        f"{names.package}/__init__.py": Template(INIT).substitute(values),
        f"{names.package}/{template.module}.py": Template(template.code).substitute(values),
        "tests/test_plugin.py": Template(TEST_HEADER).substitute(values, third_party_imports=imports)
        + Template(template.tests).substitute(values),
    }


def taken_by(kind: str, plugin: str) -> str | None:
    """The installed plugin that already registers a ``kind`` called ``plugin``, if any: a second
    one would be refused at load time, so the scaffold refuses the name up front."""
    from stillhouse.kernel.plugins import get_host

    host = get_host()
    return host.source_of(kind, plugin) if plugin in host.names(kind) else None


def scaffold(name: str, kind: str, parent: Path, *, force: bool = False) -> tuple[PluginNames, Path, list[Path]]:
    """Write the package for plugin ``name`` of ``kind`` into ``parent/<dist name>``."""
    if kind not in KINDS:
        raise UserError(f"unknown plugin kind '{kind}'", hint=f"kinds are {', '.join(KINDS)}")
    names = PluginNames.from_name(name)
    owner = taken_by(kind, names.plugin)
    if owner is not None:
        raise UserError(
            f"a {kind} named '{names.plugin}' is already provided by the installed plugin '{owner}'",
            hint="pick another name: Stillhouse refuses a second plugin of the same kind and name",
        )
    root = parent / names.dist
    if root.exists() and any(root.iterdir()) and not force:
        raise UserError(f"{root} already exists and is not empty", hint="choose another --dir, or pass --force to overwrite")
    written = []
    for relative, content in render_files(names, kind).items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")
        written.append(path)
    return names, root, written


# -- CLI ------------------------------------------------------------------------------------------


@click.group("plugin")
def plugin_group() -> None:
    """Create plugin packages (see docs/plugins.md)."""


@plugin_group.command("new")
@click.argument("name")
@click.option("--kind", required=True, type=click.Choice(list(KINDS)), help="What the plugin provides.")
@click.option("--dir", "directory", default=".", show_default=True, type=click.Path(file_okay=False), help="Where to create the package folder.")
@click.option("--force", is_flag=True, help="Overwrite files in an existing package folder.")
def plugin_new(name: str, kind: str, directory: str, force: bool) -> None:
    """Scaffold an installable plugin package NAME providing one KIND plugin, with a passing test."""
    names, root, written = scaffold(name, kind, Path(directory), force=force)
    click.echo(f"Created {names.dist} ({kind} '{names.plugin}') in {root}:")
    for path in written:
        click.echo(f"  {path.relative_to(root)}")
    click.echo(f"\nNext:\n  cd {root}\n  pip install -e .\n  pytest\n  still plugins        # lists {names.plugin}")


__all__ = ["PluginNames", "plugin_group", "render_files", "scaffold"]
