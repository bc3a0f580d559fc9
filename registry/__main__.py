"""``python -m stillhouse.registry``: the registry commands without the rest of the CLI."""

from __future__ import annotations

import sys

import click

from stillhouse.kernel.errors import StillhouseError
from stillhouse.registry.cli import add_commands


@click.group()
def main() -> None:
    """Stillhouse run registry."""


add_commands(main)


def run() -> None:
    try:
        main(standalone_mode=False)
    except StillhouseError as exc:
        click.echo(exc.render(), err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(1)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)


if __name__ == "__main__":
    run()
