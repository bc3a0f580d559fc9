"""``still run --resume RUN_ID --set key=value`` without a config file: apply what is safe to the
run's stored config, refuse the rest by name. Never ignore an override.

An override is safe when the stage that reads it has not finished yet, so no output of the run was
made under the old value: training settings before the train stage finished, evaluation settings
before evaluate finished ... A few settings stay fixed once their stage has begun, because what it
left behind depends on them: the teacher's model and sampling (answers already stored and cached
under them), the data and the task's prompts, and the student and optimiser once a training
checkpoint exists (the checkpoint's optimiser and schedule state would override a new learning
rate silently).
"""

from __future__ import annotations

import copy
from typing import Any

from stillhouse.kernel.config import parse_override, to_toml
from stillhouse.kernel.errors import ConfigError, Location
from stillhouse.kernel.runs import Run

# Which stage reads each top-level section first: an override of it is safe until that stage finished.
SECTION_STAGE = {
    "data": "generate",
    "task_options": "generate",
    "teacher": "generate",
    "teachers": "generate",
    "ensemble": "generate",  # mode and escalate_below decide who is asked
    "judge": "filter",
    "student": "train",
    "train": "train",
    "evaluate": "evaluate",
    "report": "report",
}
# Teacher settings that change how calls are made, never what is answered: safe until generate finished.
TEACHER_OPERATIONAL = frozenset(
    {"concurrency", "rpm", "tpm", "timeout", "max_retries", "retry_base_delay", "retry_max_delay", "budget_usd",
     "workers", "unreachable_after", "batch_size"}
)
# Training settings a resumed checkpoint honours (the rest are fixed by its optimiser state).
TRAIN_AFTER_CHECKPOINT = frozenset(
    {"num_epochs", "max_steps", "logging_steps", "eval_steps", "save_steps", "early_stopping_patience"}
)
ALWAYS_SAFE = frozenset({"name"})


def _refuse(assignment: str, dotted: str, why: str, hint: str) -> ConfigError:
    return ConfigError(f"--set {assignment}: cannot change '{dotted}' on resume: {why}", where=Location(field=dotted), hint=hint)


def check_resume_override(run: Run, assignment: str, keys: list[str]) -> None:
    """Raise a ConfigError naming the key if changing it now would not take effect or would mix results."""
    dotted = ".".join(keys)
    new_run = "start a new run with the changed config instead: still run CONFIG --set " + assignment
    if dotted in ALWAYS_SAFE:
        return
    section = keys[0]
    stage = SECTION_STAGE.get(section)
    if stage is None:
        raise _refuse(assignment, dotted, f"'{section}' is not a setting a resumed run can change", new_run)
    state = run.state().stages.get(stage)  # the one fold of the run's events (kernel/run_state.py)
    if state is not None and state.status == "finished" and not state.summary.get("incomplete"):
        raise _refuse(assignment, dotted, f"the {stage} stage already finished with the old value", new_run)
    started = state is not None and state.attempts > 0
    if section in ("data", "task_options") and started:
        raise _refuse(assignment, dotted, "the teacher has already answered prompts built from the old value", new_run)
    if section == "teacher" and started and (len(keys) != 2 or keys[1] not in TEACHER_OPERATIONAL):
        raise _refuse(
            assignment, dotted, "answers already stored were made with the old value",
            "only how calls are made can change mid-generate (" + ", ".join(sorted(TEACHER_OPERATIONAL)) + "); " + new_run,
        )
    if section in ("train", "student") and run.folder.checkpoints.exists():
        if section == "student" or len(keys) != 2 or keys[1] not in TRAIN_AFTER_CHECKPOINT:
            raise _refuse(
                assignment, dotted, "training resumes from a checkpoint whose model and optimiser state fix it",
                "after a checkpoint only " + ", ".join(sorted(TRAIN_AFTER_CHECKPOINT)) + " can change; " + new_run,
            )


def apply_resume_overrides(run: Run, overrides: list[str]) -> dict[str, Any]:
    """The run's stored config with ``overrides`` applied (each checked first); nothing is saved."""
    config = copy.deepcopy(run.config)
    for assignment in overrides:
        keys, value = parse_override(assignment)
        check_resume_override(run, assignment, keys)
        node = config
        for key in keys[:-1]:
            node = node.setdefault(key, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--set {assignment}: '{key}' is not a table", where=Location(field=".".join(keys)))
        node[keys[-1]] = value
    return config


def save_config(run: Run, config: dict[str, Any]) -> None:
    """Store the (validated) config as the run's own, so later resumes and the registry see it."""
    run.folder.write_config(config, to_toml(config))
    run.config = config
