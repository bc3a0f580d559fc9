"""The ``wandb`` tracker: one Weights & Biases run per Stillhouse run (its id is the Stillhouse run
id, so a resume logs into the same one).

Logged: the resolved config as the run's config, the per-step training curves (``train/loss``,
``eval/loss`` ...) as history, and in the summary the teacher's calls, tokens and cost, the filter's
acceptance, the evaluation table as ``eval/<role>/<metric>`` and ``eval/retention``; the report and
model card are saved as run files. ``mode = "offline"`` (or ``WANDB_MODE=offline``) writes the run
under ``<run folder>/wandb/`` for a later ``wandb sync``; no login or network is needed then.
"""

from __future__ import annotations

import os
import shutil
from collections import defaultdict
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from stillhouse.kernel.interfaces import StrictModel
from stillhouse.kernel.tracking import TrackedRun, Tracker

OFFLINE_RUN_GLOB = "offline-run-*-{run_id}"


class WandbConfig(StrictModel):
    project: str = Field("stillhouse", min_length=1, description="W&B project (created if missing).")
    entity: str | None = Field(None, description="W&B team or user; default: your default entity.")
    mode: Literal["online", "offline"] | None = Field(
        None,
        description="online: upload now (needs `wandb login` or WANDB_API_KEY); offline: write the run under "
        "<run folder>/wandb/ for a later `wandb sync`. Default: WANDB_MODE, else online.",
    )
    dir: str | None = Field(
        None, description="Folder wandb writes its `wandb/` folder into; default: the run folder (a relative one is inside it)."
    )
    tags: list[str] = Field(default_factory=list, description="Tags of the W&B run.")


class WandbTracker(Tracker):
    name = "wandb"
    description = "Logs the config, training curves, teacher cost, evaluation metrics and the report to Weights & Biases."
    Config = WandbConfig
    requires = {"wandb": "wandb"}

    def track(self, run: TrackedRun) -> list[Path]:
        import wandb

        config: WandbConfig = self.config  # type: ignore[assignment]
        folder = run.run_dir / Path(config.dir).expanduser() if config.dir else run.run_dir
        folder.mkdir(parents=True, exist_ok=True)
        if config.mode == "offline" or (config.mode is None and os.environ.get("WANDB_MODE") in ("offline", "dryrun")):
            for old in (folder / "wandb").glob(OFFLINE_RUN_GLOB.format(run_id=run.run_id)):
                shutil.rmtree(old)  # a resumed report replaces its offline copy: `wandb sync` would send both
        settings = wandb.Settings(silent=True, console="off", x_disable_stats=True, disable_git=True, save_code=False)
        logged = wandb.init(
            project=config.project,
            entity=config.entity,
            mode=config.mode,
            dir=str(folder),
            id=run.run_id,
            name=run.name,
            resume="allow",
            tags=config.tags or None,
            config=run.params,
            reinit="create_new",
            settings=settings,
        )
        try:
            for step, values in _by_step(run).items():
                logged.log(values, step=step)
            summary: dict[str, Any] = dict(run.teacher)
            summary |= {f"eval/{role}/{name}": value for role, values in run.evaluation.items() for name, value in values.items()}
            if run.retention is not None:
                summary["eval/retention"] = run.retention
            summary["stillhouse/run_id"] = run.run_id
            summary["stillhouse/artifacts"] = [artifact.relative_to(run.run_dir).as_posix() for artifact in run.artifacts]
            logged.summary.update(summary)
            for artifact in run.artifacts:
                logged.save(str(artifact), base_path=str(run.run_dir), policy="now")
            run_folder = Path(logged.dir).parent  # .../wandb/<offline-|>run-<stamp>-<id>/files -> the run's folder
        finally:
            logged.finish()
        return sorted(p for p in run_folder.glob("run-*.wandb") if p.is_relative_to(run.run_dir))


def _by_step(run: TrackedRun) -> dict[int, dict[str, float]]:
    """The training curves as one history row per step, in step order (W&B wants steps increasing)."""
    rows: dict[int, dict[str, float]] = defaultdict(dict)
    for metric in run.steps:
        rows[metric.step][metric.key] = metric.value
    return dict(sorted(rows.items()))
