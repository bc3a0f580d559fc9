"""``still plugin new NAME --kind KIND``: write an installable plugin package to start from.

The package has a pyproject with the ``stillhouse`` entry point, a working minimal plugin of the
kind, a README, and tests that use the ``stillhouse.testing`` fixtures and pass as generated.
"""

from __future__ import annotations

from pathlib import Path

import click

from stillhouse.kernel.errors import UserError
from stillhouse.kernel.plugins import get_host
from stillhouse.plugins.scaffold.kinds import KINDS
from stillhouse.plugins.scaffold.render import PluginNames, render_files


def taken_by(kind: str, plugin: str) -> str | None:
    """The installed plugin that already registers a ``kind`` called ``plugin``, if any: a second
    one would be refused at load time, so the scaffold refuses the name up front."""
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
