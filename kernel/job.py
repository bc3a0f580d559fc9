"""The Python API: ``DistillationJob``, shaped like the distillation jobs users know from Azure ML.

    job = DistillationJob(teacher_model="openai/gpt-4o-mini", student_model="HuggingFaceTB/SmolLM2-135M-Instruct",
                          training_data="train.jsonl", validation_data="val.jsonl", task_type="nli",
                          hyperparameters={"learning_rate": 2e-5, "batch_size": 2, "num_epochs": 3, "temperature": 0.7})
    result = job.run()

It builds the same config a TOML file would give, so the two ways of running are one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stillhouse.kernel.errors import ConfigError
from stillhouse.kernel.interfaces import Metric, StudentTrainer, Teacher, TeacherConfig, TrainConfig


@dataclass
class JobResult:
    run_id: str
    run_dir: Path
    status: str
    results: dict[str, list[Metric]] = field(default_factory=dict)

    def metric(self, role: str, name: str) -> float | None:
        return next((m.value for m in self.results.get(role, []) if m.name == name), None)


class DistillationJob:
    """A pipeline run described in code. ``hyperparameters`` keys go to ``[train]`` or ``[teacher]``
    (temperature, max_tokens ...) by name; anything else in the config can be given as sections."""

    def __init__(
        self,
        *,
        teacher_model: str,
        student_model: str,
        training_data: str | Path,
        task_type: str,
        validation_data: str | Path | None = None,
        test_data: str | Path | None = None,
        hyperparameters: dict[str, Any] | None = None,
        name: str | None = None,
        teacher: dict[str, Any] | None = None,
        student: dict[str, Any] | None = None,
        data: dict[str, Any] | None = None,
        task_options: dict[str, Any] | None = None,
        evaluate: dict[str, Any] | None = None,
        report: dict[str, Any] | None = None,
        home: str | Path | None = None,
    ) -> None:
        raw: dict[str, Any] = {
            "task": task_type,
            "data": {"train": str(training_data), **(data or {})},
            "teacher": {"model": teacher_model, **(teacher or {})},
            "student": {"model": student_model, **(student or {})},
            "train": {},
        }
        if name:
            raw["name"] = name
        if validation_data:
            raw["data"]["validation"] = str(validation_data)
        if test_data:
            raw["data"]["test"] = str(test_data)
        for section, value in (("task_options", task_options), ("evaluate", evaluate), ("report", report)):
            if value:
                raw[section] = dict(value)
        train_keys, teacher_keys = _option_names(raw) if hyperparameters else ([], [])
        for key, value in (hyperparameters or {}).items():
            if key in train_keys:
                raw["train"][key] = value
            elif key in teacher_keys:
                raw["teacher"][key] = value
            else:
                raise ConfigError(
                    f"unknown hyperparameter '{key}'",
                    hint=f"train keys: {', '.join(train_keys)}; teacher keys: temperature, max_tokens, top_p, ...",
                )
        self.raw = raw
        self.home = Path(home) if home else None

    def config(self) -> Any:
        """The validated config (raises ConfigError with the field path on bad input)."""
        from stillhouse.kernel.config import validate_config
        from stillhouse.kernel.plugins import get_host

        return validate_config(self.raw, get_host(), source="DistillationJob", base_dir=Path.cwd())

    def run(self, stages: list[str] | None = None) -> JobResult:
        from stillhouse.kernel.pipeline import Pipeline
        from stillhouse.kernel.plugins import get_host

        pipeline = Pipeline.create(self.config(), get_host(), home=self.home)
        status = pipeline.execute(stages)
        return JobResult(pipeline.run.id, pipeline.run.dir, status, pipeline.run.folder.read_metrics())


def _option_names(raw: dict[str, Any]) -> tuple[list[str], list[str]]:
    """The ``[train]`` keys of the chosen student trainer and the ``[teacher]`` keys of the chosen
    teacher backend (the kernel's own when the plugin is not installed: validation names it)."""
    from stillhouse.kernel.errors import UnknownPluginError
    from stillhouse.kernel.plugins import get_host

    host = get_host()
    train: type[TrainConfig] = TrainConfig
    teacher: type[TeacherConfig] = TeacherConfig
    try:
        train = host.get(StudentTrainer, raw["student"].get("trainer", "hf")).Train
    except UnknownPluginError:
        pass
    try:
        teacher = host.get(Teacher, raw["teacher"].get("backend", "litellm")).Config
    except UnknownPluginError:
        pass
    return list(train.model_fields), list(teacher.model_fields)
