"""The ``tensorboard`` tracker: event files in the run folder (``tensorboard --logdir`` on it or on
``$STILLHOUSE_HOME/runs`` to compare runs).

Logged: the per-step training curves under their own keys (``train/loss``, ``eval/loss`` ...),
teacher and filter numbers and the evaluation table as ``eval/<role>/<metric>`` scalars at step 0,
and the resolved config as text. A resumed run's report stage replaces its event files, so curves
are not drawn twice.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from stillhouse.kernel.interfaces import StrictModel
from stillhouse.kernel.tracking import TrackedRun, Tracker

EVENT_FILE_GLOB = "events.out.tfevents.*"


class TensorBoardConfig(StrictModel):
    log_dir: str = Field(
        "tensorboard", min_length=1, description="Folder of the event files; a relative one is inside the run folder."
    )


class TensorBoardTracker(Tracker):
    name = "tensorboard"
    description = "Writes training curves and evaluation scalars as TensorBoard event files."
    Config = TensorBoardConfig
    requires = {"tensorboard": "tensorboard"}

    def track(self, run: TrackedRun) -> list[Path]:
        from torch.utils.tensorboard import SummaryWriter

        config: TensorBoardConfig = self.config  # type: ignore[assignment]
        log_dir = run.run_dir / Path(config.log_dir).expanduser()
        for old in log_dir.glob(EVENT_FILE_GLOB):
            old.unlink()
        writer = SummaryWriter(log_dir=str(log_dir))
        try:
            for metric in run.steps:
                writer.add_scalar(metric.key, metric.value, metric.step)
            for key, value in run.teacher.items():
                writer.add_scalar(key, value, 0)
            for role, values in run.evaluation.items():
                for name, value in values.items():
                    writer.add_scalar(f"eval/{role}/{name}", value, 0)
            if run.retention is not None:
                writer.add_scalar("eval/retention", run.retention, 0)
            config_text = "\n".join(f"    {key} = {value}" for key, value in sorted(run.params.items()))
            writer.add_text("config", config_text, 0)  # indented: TensorBoard renders text as markdown
        finally:
            writer.close()
        return sorted(log_dir.glob(EVENT_FILE_GLOB))
