"""Experiment trackers: ``mlflow``, ``tensorboard`` and ``wandb``, reporters of the run to the tools TRL,
axolotl and Azure ML users already watch. Configured in ``[report] trackers``, options in
``[report.options.<name>]``; see ``kernel.tracking`` for what a tracker is and why one that fails
only warns. Their packages (``mlflow-skinny``, ``tensorboard``, ``wandb``) are the ``tracking`` extra and are
imported only when a tracker runs.
"""

from __future__ import annotations

from typing import Any

from stillhouse.kernel import hookimpl


@hookimpl
def register_reporters(register: Any) -> None:
    from stillhouse.plugins.trackers.mlflow_tracker import MlflowTracker
    from stillhouse.plugins.trackers.tensorboard_tracker import TensorBoardTracker
    from stillhouse.plugins.trackers.wandb_tracker import WandbTracker

    register(MlflowTracker)
    register(TensorBoardTracker)
    register(WandbTracker)
