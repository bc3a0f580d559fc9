"""The sweep file: its pydantic models and the checks run before any trial.

A sweep file is TOML with one ``[sweep]`` table that points at an ordinary pipeline config::

    [sweep]
    config = "run.toml"        # relative to the sweep file
    n_trials = 6
    timeout = "30m"            # optional wall-clock budget: 90s, 30m, 2h, 1h30m
    pruner = "median"          # median | successive_halving | none

    [sweep.objective]
    metric = "accuracy"        # the task's metric on the validation split, or "retention"
    direction = "maximize"
    second = "latency"         # optional: latency | size -> a multi-objective study (Pareto front)

    [sweep.space]
    "train.learning_rate" = { type = "float", low = 1e-5, high = 5e-5, log = true }
    "train.loss" = { type = "categorical", choices = ["sft", "forward_kl"] }

Every value a parameter can take is applied to the pipeline config (as ``--set`` would) and
validated by the same pydantic models ``still run`` uses, so an unknown key or a value a plugin
refuses is an error (exit 2, naming the sweep file's line and the field) before the first trial.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, Tag, ValidationError, field_validator, model_validator

from stillhouse.kernel.config import (
    LoadedConfig,
    _errors_to_config_error,
    find_line,
    read_config_file,
    validate_config,
)
from stillhouse.kernel.errors import ConfigError, Location, StillhouseError
from stillhouse.kernel.interfaces import StrictModel, TaskType
from stillhouse.kernel.plugins import PluginHost

Scalar = str | int | float | bool
# A categorical choice: a scalar, or a list of scalars (a layer subset for student.layers).
Choice = Scalar | list[Scalar]

# The second objective: a metric the evaluate stage measures on the student, minimised.
SECOND_METRICS = {"latency": ("latency_p50_ms", "latency"), "size": ("weights_bytes", "footprint")}
RETENTION = "retention"


class FloatParam(StrictModel):
    type: Literal["float"]
    low: float
    high: float
    log: bool = Field(False, description="Sample on a log scale (learning rates).")
    step: float | None = Field(None, gt=0, description="Discretise the range (not with log).")

    @model_validator(mode="after")
    def _range(self) -> FloatParam:
        if self.low >= self.high:
            raise ValueError(f"empty range: low ({self.low}) must be below high ({self.high})")
        if self.log and self.low <= 0:
            raise ValueError(f"a log range needs low > 0 (got {self.low})")
        if self.log and self.step is not None:
            raise ValueError("log and step cannot be combined")
        return self

    def bounds(self) -> list[Any]:
        return [self.low, self.high]


class IntParam(StrictModel):
    type: Literal["int"]
    low: int
    high: int
    log: bool = False
    step: int = Field(1, ge=1)

    @model_validator(mode="after")
    def _range(self) -> IntParam:
        if self.low > self.high:
            raise ValueError(f"empty range: low ({self.low}) is above high ({self.high})")
        if self.log and self.low <= 0:
            raise ValueError(f"a log range needs low > 0 (got {self.low})")
        return self

    def bounds(self) -> list[Any]:
        return [self.low, self.high]


class CategoricalParam(StrictModel):
    type: Literal["categorical"]
    choices: list[Choice] = Field(..., min_length=1)

    @model_validator(mode="after")
    def _distinct(self) -> CategoricalParam:
        keys = [json.dumps(c) for c in self.choices]
        if len(set(keys)) != len(keys):
            raise ValueError("choices repeat a value")
        return self

    def bounds(self) -> list[Any]:
        return list(self.choices)


def _param_type(value: Any) -> str | None:
    return value.get("type") if isinstance(value, dict) else getattr(value, "type", None)


# Chosen by ``type`` (a callable discriminator: StrictModel's before-validators rule out a field name).
Param = Annotated[
    Annotated[FloatParam, Tag("float")] | Annotated[IntParam, Tag("int")] | Annotated[CategoricalParam, Tag("categorical")],
    Discriminator(_param_type, custom_error_type="param_type", custom_error_message="type must be float, int or categorical"),
]


class Objective(StrictModel):
    metric: str | None = Field(None, description="A metric of the task (default: its primary metric), or 'retention'.")
    direction: Literal["maximize", "minimize"] = "maximize"
    split: Literal["validation", "test"] = Field(
        "validation", description="The split trials are scored on (validation keeps the test split unseen)."
    )
    second: Literal["latency", "size"] | None = Field(
        None, description="A second objective, minimised: a multi-objective study and its Pareto front."
    )


class SweepSection(StrictModel):
    config: str = Field(..., description="The pipeline config the trials run, relative to the sweep file.")
    name: str | None = None
    n_trials: int = Field(10, ge=1, description="Trials to complete (pruned ones count).")
    timeout: str | None = Field(None, description="Wall-clock budget of one `still sweep` process: 90s, 30m, 2h, 1h30m.")
    pruner: Literal["median", "successive_halving", "none"] = "median"
    pruner_startup_trials: int = Field(2, ge=0, description="Finished trials before the median pruner prunes.")
    sampler: Literal["tpe", "random"] = "tpe"
    seed: int | None = 0
    objective: Objective = Field(default_factory=Objective)
    space: dict[str, Param] = Field(..., min_length=1, description="Config key -> its range or choices.")
    enqueue: list[dict[str, Choice]] = Field(
        default_factory=list,
        description="Trials to run first, in order (e.g. the config's own values, to compare against).",
    )

    @field_validator("timeout")
    @classmethod
    def _timeout(cls, value: str | None) -> str | None:
        if value is not None:
            parse_duration(value)
        return value

    @model_validator(mode="after")
    def _enqueued(self) -> SweepSection:
        for i, params in enumerate(self.enqueue):
            for key, value in params.items():
                param = self.space.get(key)
                if param is None:
                    raise ValueError(f"enqueue[{i}] sets '{key}', which is not in sweep.space")
                if isinstance(param, CategoricalParam):
                    if json.dumps(value) not in {json.dumps(c) for c in param.choices}:
                        raise ValueError(f"enqueue[{i}]: {json.dumps(value)} is not one of the choices of '{key}'")
                elif not isinstance(value, (int, float)) or isinstance(value, bool) or not param.low <= value <= param.high:
                    raise ValueError(f"enqueue[{i}]: '{key}' = {json.dumps(value)} is outside [{param.low}, {param.high}]")
        return self


class SweepFile(StrictModel):
    sweep: SweepSection


_DURATION = re.compile(r"(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s)?")


def parse_duration(text: str) -> float:
    """``"2h"``, ``"30m"``, ``"90s"``, ``"1h30m"`` -> seconds; a ValueError names the accepted forms."""
    value = text.strip().lower()
    match = _DURATION.fullmatch(value)
    if not value or match is None or not any(match.groups()):
        raise ValueError(f"'{text}' is not a duration: write 90s, 30m, 2h or 1h30m")
    hours, minutes, seconds = (float(g) if g else 0.0 for g in match.groups())
    total = hours * 3600 + minutes * 60 + seconds
    if total <= 0:
        raise ValueError(f"'{text}' is not a positive duration")
    return total


@dataclass
class Sweep:
    """A validated sweep: its section, the pipeline config as read, and where both came from."""

    section: SweepSection
    source: str
    text: str
    pipeline_path: Path
    pipeline_raw: dict[str, Any]
    base: LoadedConfig
    metric: str  # the objective metric, resolved ("retention" or a task metric name)

    @property
    def directions(self) -> list[str]:
        first = self.section.objective.direction
        return [first, "minimize"] if self.section.objective.second else [first]

    @property
    def multi_objective(self) -> bool:
        return self.section.objective.second is not None


def space_line(text: str, key: str) -> int | None:
    """The line of a search-space entry (keys are quoted dotted config paths)."""
    for quote in ('"', "'"):
        needle = f"{quote}{key}{quote}"
        for i, line in enumerate(text.splitlines()):
            if needle in line:
                return i + 1
    return find_line(text, ("sweep", "space", key))


def set_key(raw: dict[str, Any], key: str, value: Any) -> None:
    """``raw[a][b][c] = value`` for ``key = "a.b.c"``, creating tables on the way (as ``--set``)."""
    parts = key.split(".")
    node = raw
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"'{part}' in '{key}' is not a table of the pipeline config")
        node = child
    node[parts[-1]] = value


def load_sweep(path: str | Path, host: PluginHost, *, text: str | None = None) -> Sweep:
    """Read and check a sweep file; every problem is a ConfigError naming file, line and field."""
    path = Path(path)
    source = str(path)
    if text is None:
        raw, text = read_config_file(path)
    else:
        import tomllib

        raw = tomllib.loads(text)
    if "sweep" not in raw:
        raise ConfigError("a sweep file needs a [sweep] table", where=Location(source), hint="see docs/sweeps.md")
    try:
        section = SweepFile.model_validate(raw).sweep
    except ValidationError as exc:
        raise _sweep_error(exc, source, text) from None
    pipeline_path = Path(section.config).expanduser()
    if not pipeline_path.is_absolute():
        pipeline_path = (path.resolve().parent / pipeline_path).resolve()
    where_config = Location(source, find_line(text, ("sweep", "config")), "sweep.config")
    try:
        pipeline_raw, pipeline_text = read_config_file(pipeline_path)
        base = validate_config(
            copy.deepcopy(pipeline_raw), host, source=str(pipeline_path), text=pipeline_text, base_dir=pipeline_path.parent
        )
    except ConfigError as exc:
        if "not found" in exc.what and exc.where and exc.where.file == str(pipeline_path):
            raise ConfigError(exc.what, where=where_config, hint="sweep.config is relative to the sweep file") from None
        raise
    metric = _check_objective(section, base, host, source, text)
    for key, param in section.space.items():
        _check_values(key, param, pipeline_raw, host, pipeline_path, source, text)
    return Sweep(section, source, text, pipeline_path, pipeline_raw, base, metric)


def _sweep_error(exc: ValidationError, source: str, text: str) -> ConfigError:
    """Pydantic's errors as a ConfigError; a search-space entry is located by its quoted key."""
    error = _errors_to_config_error(exc, SweepFile, source, text)
    first = exc.errors()[0]
    loc = first["loc"]
    if len(loc) >= 3 and loc[:2] == ("sweep", "space") and isinstance(loc[2], str):
        key = loc[2]
        reason = first["msg"].removeprefix("Value error, ")
        field = f'sweep.space."{key}"' + "".join(f".{p}" for p in loc[4:] if isinstance(p, str))
        return ConfigError(
            f"search space '{key}': {reason}",
            where=Location(source, space_line(text, key), field),
            hint='e.g. "train.learning_rate" = { type = "float", low = 1e-5, high = 5e-5, log = true }',
        )
    reason = first["msg"].removeprefix("Value error, ")
    if reason.startswith("enqueue["):
        return ConfigError(reason, where=Location(source, find_line(text, ("sweep", "enqueue")), "sweep.enqueue"))
    return error


def task_metrics(task_cls: type[TaskType[Any]], options: Any) -> set[str]:
    """The metrics a task reports: what its ``score`` of nothing names, and its primary metric."""
    names = {task_cls.primary_metric}
    try:
        names |= {m.name for m in task_cls(options).score([], [])}
    except Exception:  # noqa: BLE001 - a task that cannot score nothing still has its primary metric
        pass
    return names


def _check_objective(section: SweepSection, base: LoadedConfig, host: PluginHost, source: str, text: str) -> str:
    objective = section.objective
    pipeline = base.pipeline
    task_cls = host.get(TaskType, pipeline.task)
    metric = objective.metric or task_cls.primary_metric
    known = task_metrics(task_cls, pipeline.task_options) | {RETENTION}
    if metric not in known:
        raise ConfigError(
            f"the task '{pipeline.task}' does not report the metric '{metric}'",
            where=Location(source, find_line(text, ("sweep", "objective", "metric")), "sweep.objective.metric"),
            hint=f"metrics of {pipeline.task}: {', '.join(sorted(known))}",
        )
    if metric == RETENTION and objective.direction != "maximize":
        raise ConfigError(
            "retention is maximised",
            where=Location(source, find_line(text, ("sweep", "objective", "direction")), "sweep.objective.direction"),
        )
    if base.data_path(objective.split) is None:
        raise ConfigError(
            f"the objective is scored on the {objective.split} split, which the pipeline config does not have",
            where=Location(source, find_line(text, ("sweep", "objective", "split")) or find_line(text, ("sweep", "config")), "sweep.objective.split"),
            hint=f"add data.{objective.split} to {base.source} (validation keeps the test split for the final check)",
        )
    if objective.second and section.pruner != "none":
        raise ConfigError(
            "Optuna cannot prune a multi-objective study",
            where=Location(source, find_line(text, ("sweep", "pruner")) or find_line(text, ("sweep", "objective", "second")), "sweep.pruner"),
            hint='set pruner = "none" with a second objective',
        )
    return metric


def _check_values(
    key: str, param: Any, pipeline_raw: dict[str, Any], host: PluginHost, pipeline_path: Path, source: str, text: str
) -> None:
    """Apply each bound or choice of ``key`` to the pipeline config and validate the result."""
    where = Location(source, space_line(text, key), f'sweep.space."{key}"')
    for value in param.bounds():
        raw = copy.deepcopy(pipeline_raw)
        try:
            set_key(raw, key, value)
            validate_config(raw, host, source=f"{pipeline_path} with {key} = {json.dumps(value)}", base_dir=pipeline_path.parent)
        except StillhouseError as exc:
            raise ConfigError(
                f"search space '{key}': the value {json.dumps(value)} is refused by the pipeline config: {exc.what}",
                where=where,
                details=exc.details,
                hint=exc.hint,
            ) from None
