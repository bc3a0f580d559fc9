"""The sweep plugin: ``still sweep`` searches a pipeline's settings with Optuna (docs/sweeps.md).

- ``spec``: the sweep file's models and the checks run before any trial (exit 2, file/line/field);
- ``study``: the sweep folder, its Optuna journal storage and the worker loop;
- ``trial``: one trial as an ordinary pipeline run, tagged with the sweep, pruned on validation loss;
- ``report``: ``still sweep show``: best trial, Pareto front, importances, best.toml;
- ``command``: the click commands. Optuna is imported only when a sweep command runs.
"""

from __future__ import annotations

import click

from stillhouse.kernel import hookimpl


@hookimpl
def register_commands(cli: click.Group) -> None:
    from stillhouse.plugins.sweep.command import sweep_group  # light: click only

    cli.add_command(sweep_group)
