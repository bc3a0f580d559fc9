"""Pipeline configs: TOML or YAML files validated by pydantic, with errors that point at the line.

Validation has two steps. The top level names the plugins (``task``, ``teacher.backend``,
``student.trainer``, ``train.loss``); then a model is built whose sections are those plugins' Config
models (``[train]`` is the student trainer's ``Train`` model), and the whole file is validated
against it, so a plugin's options are checked exactly like the kernel's. Every option is checked
here, before the first stage runs. Unknown keys are errors with a "did you mean"; literal API keys are refused.
"""

from __future__ import annotations

import difflib
import json
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, Field, ValidationError, create_model

from stillhouse.kernel.data_hf import HF_PREFIX, check_dataset_source, is_dataset_source, resolve_source
from stillhouse.kernel.errors import ConfigError, Location, UnknownPluginError
from stillhouse.kernel.interfaces import (
    EmptyConfig,
    EvaluateConfig,
    Evaluator,
    Loss,
    Plugin,
    Reporter,
    StrictModel,
    StudentConfig,
    StudentTrainer,
    TaskConfig,
    TaskType,
    Teacher,
    TeacherConfig,
    TrainConfig,
)
from stillhouse.kernel.plugins import PluginHost
from stillhouse.kernel.secrets import find_secret_shape, has_url_credentials, is_secret_key
from stillhouse.kernel.teacher_ensemble import EnsembleConfig, JudgeSpec, NamedTeacher, primary_teacher
from stillhouse.kernel.tracking import check_trackers

P = TypeVar("P", bound=Plugin[Any])


class DedupConfig(StrictModel):
    """``data.dedup``: duplicate prompts of the train and validation splits, removed before any teacher call."""

    exact: bool = Field(True, description="Drop rows whose inputs equal an earlier row's (case and spacing ignored).")
    near: bool = Field(True, description="Drop rows whose inputs nearly equal an earlier row's (MinHash/LSH).")
    threshold: float = Field(
        0.9, gt=0, le=1, description="Least Jaccard similarity of character 5-grams, in every input field, for a near duplicate."
    )


class ContaminationConfig(StrictModel):
    """``data.contamination``: training rows whose prompt nearly matches an evaluation (test or validation) row."""

    mode: Literal["drop", "report", "off"] = Field(
        "drop", description="drop: remove such training rows; report: count them only; off: no check."
    )
    threshold: float = Field(0.9, gt=0, le=1, description="Least Jaccard similarity (as for dedup) that counts as a match.")


class DataConfig(StrictModel):
    """The ``[data]`` section. Relative paths are resolved against the config file's folder."""

    train: str = Field(..., description="Training split: JSONL, CSV or Parquet.")
    validation: str | None = Field(None, description="Validation split (teacher answers it too; used for validation loss).")
    test: str | None = Field(None, description="Evaluation split.")
    limit: int | None = Field(None, gt=0, description="Use only the first N rows of each split.")
    fields: dict[str, str] = Field(default_factory=dict, description="Task field -> column name in the files.")
    on_bad_rows: Literal["error", "skip"] = Field("error", description="error: stop at the first bad row; skip: count and report.")
    dedup: DedupConfig = Field(default_factory=DedupConfig, description="Duplicate prompts removed before teacher calls.")
    contamination: ContaminationConfig = Field(
        default_factory=ContaminationConfig, description="Training rows that leak an evaluation row."
    )
    balance: Literal["none", "downsample", "upsample", "weights"] = Field(
        "none",
        description="Balance the training set by label (or by balance_by): downsample, upsample, or class weights in the loss.",
    )
    balance_by: str | None = Field(
        None, description="Balance by this field or column (topic, source) instead of the task's label."
    )
    validation_fraction: float | None = Field(
        None,
        ge=0,
        lt=1,
        description="Share of train carved out, stratified by label, as the validation split when data.validation is "
        "not given. Default: 0.1 when train.early_stopping_patience is set, else none.",
    )


class ReportConfig(StrictModel):
    reporters: list[str] = Field(default_factory=lambda: ["terminal", "markdown", "html", "model_card"])
    trackers: list[str] = Field(default_factory=list, description="Experiment trackers the run is logged to: mlflow, tensorboard.")
    options: dict[str, dict[str, Any]] = Field(default_factory=dict, description="Options per tracker, e.g. [report.options.mlflow].")


class PipelineBase(StrictModel):
    """A pipeline config. The plugin sections are typed with the kernel's models here; the model
    a config is validated with (``pipeline_model``) narrows them to the chosen plugins' models."""

    name: str | None = Field(None, description="A human name for runs of this config.")
    tags: dict[str, str] = Field(
        default_factory=dict,
        description="Free labels recorded with the run (config.json, the registry's params as tags.KEY); "
        "`still sweep` sets sweep and trial.",
    )
    task: str = Field(..., description="Task type plugin: nli, qa, math, summarization, conversation ...")
    data: DataConfig
    evaluate: EvaluateConfig = Field(default_factory=EvaluateConfig)
    report: ReportConfig = Field(default_factory=ReportConfig)
    task_options: TaskConfig = Field(default_factory=TaskConfig)
    teacher: TeacherConfig
    student: StudentConfig
    train: TrainConfig = Field(default_factory=TrainConfig)
    teachers: list[dict[str, Any]] | None = Field(
        None,
        description="Several teachers ([[teachers]]): each a name, a weight > 0 and any option of its backend's "
        "[teacher]; validated per entry by kernel.teachers_config. Instead of [teacher].",
    )
    ensemble: EnsembleConfig | None = Field(None, description="How the answers of [[teachers]] combine.")
    judge: dict[str, Any] | None = Field(
        None,
        description="A judge model scoring each accepted answer: any teacher option plus rubric, threshold, scale.",
    )


@dataclass
class LoadedConfig:
    """A validated pipeline config and where it came from."""

    pipeline: PipelineBase  # an instance of the model pipeline_model built for the config's plugins
    source: str
    base_dir: Path
    text: str = ""
    teachers: list[NamedTeacher] = field(default_factory=list)
    """The ``[[teachers]]`` (empty with the one ``[teacher]``)."""
    judge: JudgeSpec | None = None

    @property
    def ensemble(self) -> EnsembleConfig:
        """``[ensemble]``, its defaults when the config has none."""
        return self.pipeline.ensemble or EnsembleConfig()

    def data_path(self, split: str) -> Path | None:
        value = getattr(self.pipeline.data, split)
        if value is None:
            return None
        if value.startswith(HF_PREFIX):
            return resolve_source(value, self.base_dir)
        path = Path(value).expanduser()
        return path if path.is_absolute() else (self.base_dir / path).resolve()

    def to_dict(self) -> dict[str, Any]:
        data = self.pipeline.model_dump(mode="json")
        if not data.get("tags"):  # untagged configs keep the shape (and config hash) they had before tags
            data.pop("tags", None)
        return data


# -- reading files ------------------------------------------------------------------------------


def read_config_file(path: str | Path) -> tuple[dict[str, Any], str]:
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"config file not found: {path}", where=Location(file=str(path)))
    if path.is_dir():
        raise ConfigError("the config path is a folder, not a file", where=Location(file=str(path)))
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")  # a byte-order mark (Windows editors write one) is not a key
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"not UTF-8 text: byte 0x{data[exc.start]:02x}",
            where=Location(str(path), data.count(b"\n", 0, exc.start) + 1),
            hint="TOML and YAML files are UTF-8; save the file as UTF-8",
        ) from None
    if path.suffix in (".yaml", ".yml"):
        import yaml

        try:
            raw = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            raise ConfigError(
                f"not valid YAML: {getattr(exc, 'problem', exc)}",
                where=Location(str(path), mark.line + 1 if mark else None),
            ) from None
    else:
        try:
            raw = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            match = re.search(r"line (\d+)", str(exc))
            raise ConfigError(
                f"not valid TOML: {exc}",
                where=Location(str(path), int(match.group(1)) if match else None),
                hint="strings need quotes; tables are written [section]",
            ) from None
    if not isinstance(raw, dict):
        raise ConfigError("a pipeline config must be a table of keys", where=Location(str(path)))
    return raw, text


def find_line(text: str, loc: tuple[str | int, ...]) -> int | None:
    """Best-effort 1-based line of a dotted key in TOML or YAML text."""
    if not text or not loc:
        return None
    keys = [str(k) for k in loc if not isinstance(k, int)]
    lines = text.splitlines()
    # TOML: [a.b] header then `key =`, or a dotted key `b.key =` inside [a], or nested YAML keys.
    for split in range(len(keys) - 1, -1, -1):
        section, rest = keys[:split], keys[split:]
        start = 0
        if section:
            header = re.compile(r"^\s*\[+\s*" + r"\s*\.\s*".join(map(re.escape, section)) + r"\s*\]+\s*(#.*)?$")
            start = next((i + 1 for i, line in enumerate(lines) if header.match(line)), -1)
            if start < 0:
                continue
        dotted = r"\s*\.\s*".join(map(re.escape, rest))
        key_line = re.compile(r"^\s*[\"']?" + dotted + r"[\"']?\s*[=:]")
        for i in range(start, len(lines)):
            if i > start and section and re.match(r"^\s*\[", lines[i]):
                break
            if key_line.match(lines[i]):
                return i + 1
    # YAML nesting: find each key in order, indentation increasing.
    pos = 0
    found = None
    for key in keys:
        pattern = re.compile(r"^\s*" + re.escape(key) + r"\s*:")
        for i in range(pos, len(lines)):
            if pattern.match(lines[i]):
                found, pos = i + 1, i + 1
                break
        else:
            return found
    return found


# -- secrets ------------------------------------------------------------------------------------


def _check_secrets(raw: Any, source: str, text: str, prefix: tuple[str, ...] = ()) -> None:
    """Refuse a secret anywhere in a config: under a secret-named key, shaped like a key or token
    (in any string, a run name included), or as credentials in a URL. One rule set: kernel/secrets.py."""
    if isinstance(raw, dict):
        for key, value in raw.items():
            path = (*prefix, str(key))
            if is_secret_key(str(key), config=True) and value:
                raise ConfigError(
                    f"'{'.'.join(path)}' holds a literal secret; configs must not contain keys",
                    where=Location(source, _secret_line(text, path), ".".join(path)),
                    hint=f"put the key in an environment variable and set {'.'.join((*prefix, 'api_key_env'))} = \"NAME\"",
                )
            _check_secrets(value, source, text, path)
    elif isinstance(raw, list):
        for i, value in enumerate(raw):
            _check_secrets(value, source, text, (*prefix, str(i)))
    elif isinstance(raw, str) and has_url_credentials(raw):
        field = ".".join(prefix)
        raise ConfigError(
            f"'{field}' has credentials in its URL (user:password@host); they would be stored with the run",
            where=Location(source, _secret_line(text, prefix), field),
            hint="remove them from the URL and put the key in an environment variable named by api_key_env",
        )
    elif isinstance(raw, str) and find_secret_shape(raw):
        raise ConfigError(
            f"'{'.'.join(prefix)}' looks like a literal API key or token",
            where=Location(source, _secret_line(text, prefix), ".".join(prefix)),
            hint="configs name the environment variable that holds a key (api_key_env), never the key",
        )


def _secret_line(text: str, path: tuple[str, ...]) -> int | None:
    """The line of ``path``, else of its nearest parent found (a key inside an inline table)."""
    for end in range(len(path), 0, -1):
        line = find_line(text, path[:end])
        if line is not None:
            return line
    return None


# -- validation ---------------------------------------------------------------------------------


def _plugin_config(host: PluginHost, kind: Callable[..., Plugin[Any]], name: str, source: str, text: str, loc: tuple[str, ...]) -> type[BaseModel]:
    return _plugin_class(host, kind, name, source, text, loc).Config


def _plugin_class(host: PluginHost, kind: Callable[..., P], name: str, source: str, text: str, loc: tuple[str, ...]) -> type[P]:
    """``host.get(kind, name)``, an unknown name reported as a ConfigError at ``loc`` in the file."""
    try:
        return host.get(kind, name)
    except UnknownPluginError as exc:
        raise ConfigError(
            exc.what,
            where=Location(source, find_line(text, loc), ".".join(loc)),
            hint=exc.hint,
            details=exc.details,
        ) from None


def pipeline_model(
    task_cfg: type[BaseModel] = TaskConfig,
    teacher_cfg: type[BaseModel] = TeacherConfig,
    student_cfg: type[BaseModel] = StudentConfig,
    train_cfg: type[TrainConfig] = TrainConfig,
) -> type[PipelineBase]:
    """The full config model for a given choice of plugins (``train_cfg``: the trainer's ``Train``)."""
    return create_model(
        "Pipeline",
        __base__=PipelineBase,
        task_options=(task_cfg, Field(default_factory=task_cfg, description="Options of the task plugin.")),
        teacher=(teacher_cfg, Field(..., description="The teacher model and how to call it.")),
        student=(student_cfg, Field(..., description="The student model and how to build it.")),
        train=(train_cfg, Field(default_factory=train_cfg)),
    )


def _errors_to_config_error(exc: ValidationError, model: type[BaseModel], source: str, text: str, root: tuple = ()) -> ConfigError:
    details: list[str] = []
    lines: list[int | None] = []
    first_where = None
    for err in exc.errors():
        loc = (*root, *err["loc"])
        dotted = ".".join(str(p) for p in loc)
        line = find_line(text, loc)
        where = Location(source, line, dotted)
        first_where = first_where or where
        if err["type"] == "extra_forbidden":
            allowed = _fields_at(model, tuple(err["loc"][:-1]))
            close = difflib.get_close_matches(str(err["loc"][-1]), allowed, n=1)
            msg = f"unknown key '{dotted}'" + (f" (did you mean '{close[0]}'?)" if close else "")
            if not close and allowed:
                msg += f"; valid keys here: {', '.join(sorted(allowed))}"
        elif err["type"] == "missing":
            msg = f"'{dotted}' is required"
        else:
            given = err.get("input")
            shown = json.dumps(given, default=str) if not isinstance(given, dict) else "a table"
            msg = f"'{dotted}': {err['msg']} (got {shown[:60]})"
        details.append(msg)
        lines.append(line)
    if len(details) == 1:
        return ConfigError(details[0], where=first_where)
    located = [m + (f"  ({source}:{line})" if line else "") for m, line in zip(details, lines, strict=True)]
    return ConfigError(f"{len(details)} problems in the config", where=Location(source), details=located)


def _fields_at(model: type[BaseModel], loc: tuple) -> list[str]:
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        field = getattr(current, "model_fields", {}).get(part)
        if field is None:
            return []
        annotation = field.annotation
        candidates = [annotation, *getattr(annotation, "__args__", ())]
        current = next((c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None)
        if current is None:
            return []
    return list(getattr(current, "model_fields", {}))


def parse_override(assignment: str) -> tuple[list[str], Any]:
    """``teacher.temperature=0.2`` -> (["teacher", "temperature"], 0.2); values parse as TOML."""
    if "=" not in assignment:
        raise ConfigError(f"--set expects key=value, got '{assignment}'", hint="e.g. --set train.num_epochs=1")
    key, value = assignment.split("=", 1)
    try:
        parsed = tomllib.loads(f"v = {value}")["v"]
    except tomllib.TOMLDecodeError:
        parsed = value
    return [k.strip() for k in key.strip().split(".")], parsed


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    for assignment in overrides:
        keys, value = parse_override(assignment)
        node = raw
        for key in keys[:-1]:
            node = node.setdefault(key, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--set {assignment}: '{key}' is not a table")
        node[keys[-1]] = value
    return raw


def _table(raw: dict[str, Any], key: str) -> dict[str, Any]:
    value = raw.get(key)
    return value if isinstance(value, dict) else {}


def teacher_config_model(
    host: PluginHost, teacher: dict[str, Any], *, source: str = "<config>", text: str = "", loc: tuple[str | int, ...] = ("teacher",)
) -> type[TeacherConfig]:
    """The model a teacher table is validated against: the ``Config`` of the backend it names
    (``backend``, default litellm). The kernel's :class:`TeacherConfig` holds only what every
    teacher means the same way; each backend's ``Config`` adds its own options (the call engine's
    in :class:`~stillhouse.kernel.teaching.CallTeacherConfig`, litellm's endpoint and local-model
    options), so an option of another backend is an unknown key. ``loc`` is where the table sits in
    the file (``("teacher",)``; e.g. ``("teachers", 0)`` for an entry of a list)."""
    backend = teacher.get("backend", "litellm")
    where = (*(str(p) for p in loc), "backend")
    if not isinstance(backend, str):
        raise ConfigError(f"'{'.'.join(where)}' must be a teacher plugin name", where=Location(source, find_line(text, where), ".".join(where)))
    config: type[TeacherConfig] = _plugin_class(host, Teacher, backend, source, text, where).Config
    return config


def validate_teacher(
    teacher: dict[str, Any], host: PluginHost, *, source: str = "<config>", text: str = "", loc: tuple[str | int, ...] = ("teacher",)
) -> TeacherConfig:
    """One teacher table validated against its backend's ``Config`` (:func:`teacher_config_model`),
    errors located at ``loc`` in the file."""
    model = teacher_config_model(host, teacher, source=source, text=text, loc=loc)
    try:
        return model.model_validate(teacher)
    except ValidationError as exc:
        raise _errors_to_config_error(exc, model, source, text, root=loc) from None


def config_model(raw: dict[str, Any], host: PluginHost, *, source: str = "<config>", text: str = "") -> type[PipelineBase]:
    """The model a raw config is validated against, for the plugins it names: the task's options,
    the teacher backend's ``Config``, the student trainer's ``Config`` and its ``Train``."""
    task = raw.get("task")
    student = _table(raw, "student")
    task_cfg = _plugin_config(host, TaskType, task, source, text, ("task",)) if isinstance(task, str) else TaskConfig
    teacher_cfg = teacher_config_model(host, _table(raw, "teacher"), source=source, text=text)
    trainer = _plugin_class(host, StudentTrainer, student.get("trainer", "hf"), source, text, ("student", "trainer"))
    return pipeline_model(task_cfg, teacher_cfg, trainer.Config, trainer.Train)


def _check_trainer(
    host: PluginHost, pipeline: PipelineBase, loss: Loss[Any], source: str, text: str, teachers: list[NamedTeacher]
) -> None:
    """The student trainer's own cross-section checks (:meth:`StudentTrainer.check_config`), located in the file.

    With ``[[teachers]]`` the trainer sees the list's primary teacher (the one the train stage uses for
    anything only one teacher can do, such as scoring on-policy samples); a ``teacher.*`` field it names
    is then located at that entry of the list."""
    trainer = _plugin_class(host, StudentTrainer, pipeline.student.trainer, source, text, ("student", "trainer"))
    try:
        trainer.check_config(pipeline.student, pipeline.train, pipeline.teacher, loss)
    except ConfigError as exc:
        field = exc.where.field if exc.where is not None else None
        if field and teachers and field.split(".")[0] == "teacher":
            from stillhouse.kernel.teachers_config import entry_line

            mode = pipeline.ensemble.mode if pipeline.ensemble is not None else "vote"
            primary = primary_teacher(teachers, mode)
            index = teachers.index(primary)
            key = field.split(".", 1)[1] if "." in field else "model"
            exc.where = Location(source, entry_line(text, "teachers", index, key), f"teachers[{index}].{key}")
            rule = "the last in a cascade" if mode == "cascade" else "the heaviest"
            exc.details = [
                *exc.details,
                f"with [[teachers]], the primary teacher '{primary.name}' ({rule}) is the one the trainer uses here; "
                "give a teacher that can more weight, or put it first among equals",
            ]
        elif field:
            exc.where = Location(source, _key_line(text, field), field)
        raise


def _key_line(text: str, dotted: str) -> int | None:
    """The line of a dotted key: ``key =``, else its ``[a.b]`` table header, else the nearest enclosing
    key (``a.b.c`` inside an inline table ``b = { c = ... }`` is found at ``b``)."""
    keys = dotted.split(".")
    for n in range(len(keys), 0, -1):
        line = find_line(text, tuple(keys[:n]))
        if line is not None:
            return line
        header = re.compile(r"^\s*\[+\s*" + r"\s*\.\s*".join(map(re.escape, keys[:n])) + r"\s*\]+\s*(#.*)?$")
        line = next((i for i, row in enumerate(text.splitlines(), 1) if header.match(row)), None)
        if line is not None:
            return line
    return None


def validate_config(raw: dict[str, Any], host: PluginHost, *, source: str = "<config>", text: str = "", base_dir: Path | None = None) -> LoadedConfig:
    """Validate a raw config mapping against the kernel and plugin models."""
    _check_secrets(raw, source, text)
    from stillhouse.kernel.teachers_config import validate_teachers

    raw, teachers, judge = validate_teachers(raw, host, source, text)
    model = config_model(raw, host, source=source, text=text)
    try:
        pipeline = model.model_validate(raw)
    except ValidationError as exc:
        raise _errors_to_config_error(exc, model, source, text) from None
    loss_cls = _plugin_config(host, Loss, pipeline.train.loss, source, text, ("train", "loss"))
    try:
        loss_cfg = loss_cls.model_validate(pipeline.train.loss_options)
    except ValidationError as exc:
        raise _errors_to_config_error(exc, loss_cls, source, text, root=("train", "loss_options")) from None
    pipeline.train.loss_options = loss_cfg.model_dump(mode="json")
    loss = _plugin_class(host, Loss, pipeline.train.loss, source, text, ("train", "loss"))(loss_cfg)
    _check_trainer(host, pipeline, loss, source, text, teachers)
    for name, options in pipeline.evaluate.options.items():
        where = ("evaluate", "options", name)
        if name not in pipeline.evaluate.evaluators:
            close = difflib.get_close_matches(name, pipeline.evaluate.evaluators, n=1)
            raise ConfigError(
                f"options for evaluator '{name}', which evaluate.evaluators does not list",
                where=Location(source, find_line(text, where), ".".join(where)),
                hint=f"did you mean '{close[0]}'?" if close else f"evaluators: {', '.join(pipeline.evaluate.evaluators)}",
            )
        evaluator_cfg = _plugin_config(host, Evaluator, name, source, text, ("evaluate", "evaluators"))
        try:
            evaluator_cfg.model_validate(options)
        except ValidationError as exc:
            raise _errors_to_config_error(exc, evaluator_cfg, source, text, root=where) from None
    kinds: tuple[tuple[Callable[..., Plugin[Any]], list[str], tuple[str, ...]], ...] = (
        (Evaluator, pipeline.evaluate.evaluators, ("evaluate", "evaluators")),
        (Reporter, pipeline.report.reporters, ("report", "reporters")),
    )
    for kind, names, key in kinds:
        for name in names:
            _plugin_config(host, kind, name, source, text, key)
    check_trackers(pipeline.report, host, lambda key: Location(source, find_line(text, key), ".".join(key)))
    loaded = LoadedConfig(pipeline, source, base_dir or Path.cwd(), text, teachers, judge)
    for split in ("train", "validation", "test"):
        path = loaded.data_path(split)
        if path is not None and is_dataset_source(path):
            check_dataset_source(path, split, Location(source, find_line(text, ("data", split)), f"data.{split}"))
            continue
        if path is not None and not path.exists():
            raise ConfigError(
                f"data.{split} file not found: {path}",
                where=Location(source, find_line(text, ("data", split)), f"data.{split}"),
                hint="relative paths are resolved against the config file's folder",
            )
        if path is not None and path.is_dir():
            raise ConfigError(
                f"data.{split} is a folder, not a data file: {path}",
                where=Location(source, find_line(text, ("data", split)), f"data.{split}"),
                hint="name a JSONL, CSV or Parquet file inside it",
            )
    from stillhouse.kernel.data import check_field_mapping

    def fields_at(key: str) -> Location:
        line = find_line(text, ("data", "fields", key)) or find_line(text, ("data", "fields"))
        return Location(source, line, f"data.fields.{key}")

    check_field_mapping(host.get(TaskType, pipeline.task).fields, pipeline.data.fields, fields_at)
    from stillhouse.kernel.curation import check_curation

    check_curation(
        pipeline,
        lambda: host.get(TaskType, pipeline.task)(pipeline.task_options),
        lambda key: Location(source, find_line(text, ("data", key)), f"data.{key}"),
    )
    return loaded


def load_config(path: str | Path, host: PluginHost, overrides: list[str] | None = None) -> LoadedConfig:
    """Read, override and validate a pipeline config file."""
    raw, text = read_config_file(path)
    apply_overrides(raw, overrides or [])
    try:
        return validate_config(raw, host, source=str(path), text=text, base_dir=Path(path).resolve().parent)
    except ConfigError as exc:
        raise _blame_overrides(exc, overrides or []) from None


def _blame_overrides(exc: ConfigError, overrides: list[str]) -> ConfigError:
    """Point a problem with a value given by ``--set`` at that ``--set``, not at a line of the file
    (the file may not even have the key, or has the value the user just replaced)."""
    given = {".".join(parse_override(a)[0]): a.strip() for a in overrides if "=" in a}

    def owner(dotted: str) -> str | None:
        return next((a for k, a in given.items() if dotted == k or dotted.startswith(k + ".")), None)

    if exc.where and exc.where.field and (assignment := owner(exc.where.field)):
        exc.where = Location(f"--set {assignment}", None, exc.where.field)
    for i, detail in enumerate(exc.details):
        match = re.match(r"(?:unknown key )?'([^']+)'", detail)
        if match and (assignment := owner(match.group(1))):
            exc.details[i] = re.sub(r"  \([^()]*:\d+\)$", "", detail) + f"  (--set {assignment})"
    return exc


def config_schema(host: PluginHost) -> dict[str, Any]:
    """JSON Schema of the pipeline config, and of every installed plugin's options."""
    plugins: dict[str, dict[str, Any]] = {}
    for kind in ("task", "teacher", "student", "loss", "evaluator", "reporter"):
        plugins[kind] = {name: host.get(kind, name).Config.model_json_schema() for name in host.names(kind)}
    defaults: dict[str, type[BaseModel]] = {}
    for kind, default in (("task", None), ("teacher", "litellm"), ("student", "hf")):
        names = host.names(kind)
        defaults[kind] = host.get(kind, default).Config if default in names else (TaskConfig if kind == "task" else EmptyConfig)
    trainer = host.get(StudentTrainer, "hf") if "hf" in host.names(StudentTrainer) else StudentTrainer
    pipeline = pipeline_model(defaults["task"], defaults["teacher"], defaults["student"], trainer.Train)
    return {"pipeline": pipeline.model_json_schema(), "plugins": plugins}


def to_toml(data: dict[str, Any]) -> str:
    """Serialise a resolved config as TOML (tables after scalars; None values omitted)."""

    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (int, float)):
            return repr(v)
        if isinstance(v, str):
            return json.dumps(v, ensure_ascii=False)
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v if x is not None) + "]"
        if isinstance(v, dict):
            items = ", ".join(f"{_key(k)} = {value(x)}" for k, x in v.items() if x is not None)
            return "{ " + items + " }" if items else "{}"
        return json.dumps(str(v))

    def _key(k: str) -> str:
        return k if re.fullmatch(r"[A-Za-z0-9_-]+", k) else json.dumps(k)

    out: list[str] = []

    def table(prefix: str, d: dict[str, Any]) -> None:
        if prefix:
            out.append(f"\n[{prefix}]")
        for k, v in d.items():
            if v is not None and not (isinstance(v, dict) and v):
                out.append(f"{_key(k)} = {value(v)}")
        for k, v in d.items():
            if isinstance(v, dict) and v:
                table(f"{prefix}.{_key(k)}" if prefix else _key(k), v)

    table("", data)
    return "\n".join(out).lstrip() + "\n"
