"""The scaffold plugin: adds ``still plugin new`` (an installable plugin package to start from).

Its templates are package data files under ``templates/``; ``render`` fills them in and
``command`` checks the name and writes the package.
"""

from __future__ import annotations

import click

from stillhouse.kernel import hookimpl


@hookimpl
def register_commands(cli: click.Group) -> None:
    from stillhouse.plugins.scaffold.command import plugin_group  # light: click and text files only

    cli.add_command(plugin_group)
