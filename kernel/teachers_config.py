"""Validation of ``[[teachers]]`` and ``judge = {...}``, before the rest of a pipeline config.

Each entry is validated with its backend's teacher ``Config`` — the model ``pipeline_model`` puts
under ``[teacher]`` — so an entry takes exactly the options a one-teacher config takes, plus
``name`` and ``weight``. The list then stands in for ``[teacher]``: the config's ``teacher`` becomes
the primary teacher (:func:`stillhouse.kernel.teacher_ensemble.primary_teacher`), so everything that
needs one teacher (evaluate's teacher role, the report) has one. Every problem is a ConfigError with
the file, line and field.
"""

from __future__ import annotations

import math
import re
from typing import Any

from pydantic import ValidationError

from stillhouse.kernel.config import _errors_to_config_error, find_line, validate_teacher
from stillhouse.kernel.errors import ConfigError, Location
from stillhouse.kernel.interfaces import TeacherConfig
from stillhouse.kernel.plugins import PluginHost
from stillhouse.kernel.teacher_ensemble import (
    ENTRY_KEYS,
    JUDGE_KEYS,
    EnsembleConfig,
    JudgeOptions,
    JudgeSpec,
    NamedTeacher,
    primary_teacher,
)

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
RESERVED_NAMES = frozenset({"judge"})  # the judge's calls are labelled so in events


def validate_teachers(
    raw: dict[str, Any], host: PluginHost, source: str, text: str
) -> tuple[dict[str, Any], list[NamedTeacher], JudgeSpec | None]:
    """(the raw config with ``teachers``/``teacher``/``judge`` normalised, the teachers, the judge)."""
    raw = dict(raw)
    teachers: list[NamedTeacher] = []
    entries = raw.get("teachers")
    if entries is not None:
        teachers = _entries(entries, host, source, text)
        ensemble = raw.get("ensemble") if isinstance(raw.get("ensemble"), dict) else {}
        primary = primary_teacher(teachers, str((ensemble or {}).get("mode", "vote")))
        derived = primary.config.model_dump(mode="json")
        # a stored run's config (config.json, or config.toml without its None values) has the derived one
        if "teacher" in raw and _without_none(raw["teacher"]) != _without_none(derived):
            raise ConfigError(
                "[teacher] and [[teachers]] together: a config has one teacher or a list of them",
                where=Location(
                    source, _header_line(text, "teacher") or find_line(text, ("teacher", "model")), "teacher"
                ),
                hint="move the [teacher] table into the list as one more [[teachers]] entry with a name and a weight, "
                "or drop the list",
            )
        raw["teachers"] = [t.dump() for t in teachers]
        raw["teacher"] = derived
    judge = None
    if raw.get("judge") is not None:
        judge = _judge(raw["judge"], host, source, text)
        raw["judge"] = judge.dump()
    _check_ensemble(raw, bool(teachers), judge is not None, source, text)
    return raw, teachers, judge


def _check_ensemble(raw: dict[str, Any], has_teachers: bool, has_judge: bool, source: str, text: str) -> None:
    """[ensemble] options that would do nothing are mistakes: said before any call."""
    ensemble = raw.get("ensemble")
    judge = raw.get("judge")
    best_of = ensemble.get("best_of") if isinstance(ensemble, dict) else None
    if isinstance(judge, dict) and judge.get("mode") == "pairwise" and not (has_teachers and best_of == "judge"):
        raise ConfigError(
            'judge.mode = "pairwise" compares the answers of several teachers, but nothing asks it to',
            where=Location(source, find_line(text, ("judge", "mode")) or find_line(text, ("judge",)), "judge.mode"),
            hint='use it with [[teachers]] and ensemble.best_of = "judge", or leave judge.mode out (pointwise scores)',
        )
    if not isinstance(ensemble, dict):
        return  # validated with the rest of the config
    defaults = EnsembleConfig().model_dump(mode="json")
    changed = [k for k, v in ensemble.items() if k in defaults and v != defaults[k]]
    if changed and not has_teachers:
        key = changed[0]
        raise ConfigError(
            f"ensemble.{key} is set but the config has one [teacher], not a [[teachers]] list",
            where=Location(source, find_line(text, ("ensemble", key)), f"ensemble.{key}"),
            hint="[ensemble] says how the answers of several teachers combine; with one teacher use "
            "task_options.min_agreement and teacher.samples",
        )
    if ensemble.get("best_of") == "judge" and not has_judge:
        raise ConfigError(
            'ensemble.best_of = "judge" needs a judge',
            where=Location(source, find_line(text, ("ensemble", "best_of")), "ensemble.best_of"),
            hint='add judge = { model = "...", rubric = "..." }, or best_of = "verifier"',
        )


def _entries(entries: Any, host: PluginHost, source: str, text: str) -> list[NamedTeacher]:
    if not isinstance(entries, list) or not entries or not all(isinstance(e, dict) for e in entries):
        raise ConfigError(
            "'teachers' must be a list of tables, one per teacher",
            where=Location(
                source, _header_line(text, "teachers", array=True) or find_line(text, ("teachers",)), "teachers"
            ),
            hint='write each as [[teachers]] with name = "...", weight = 1.0 and its model options',
        )
    out: list[NamedTeacher] = []
    seen: dict[str, int] = {}
    for i, entry in enumerate(entries):

        def where(key: str, i: int = i) -> Location:
            return Location(source, entry_line(text, "teachers", i, key), f"teachers.{i}.{key}")

        name = entry.get("name")
        if not isinstance(name, str) or not _NAME.fullmatch(name) or name in RESERVED_NAMES:
            shown = "missing" if name is None else repr(name)
            raise ConfigError(
                f"teachers.{i}.name: each teacher needs a short name of letters, digits, '_', '.', '-' (got {shown})",
                where=where("name"),
                hint='e.g. name = "cheap"; the name labels its answers, calls and costs'
                + ("; 'judge' is reserved" if name in RESERVED_NAMES else ""),
            )
        if name in seen:
            raise ConfigError(
                f"duplicate teacher name '{name}' (teachers.{seen[name]} has it too)",
                where=where("name"),
                hint="give each [[teachers]] entry a name of its own",
            )
        seen[name] = i
        weight = entry.get("weight", 1.0)
        if isinstance(weight, bool) or not isinstance(weight, int | float) or not math.isfinite(weight) or weight <= 0:
            raise ConfigError(
                f"teachers.{i}.weight must be a number > 0 (got {weight!r})",
                where=where("weight"),
                hint="weights say how much a teacher's vote counts; leave it out for 1.0",
            )
        options = {k: v for k, v in entry.items() if k not in ENTRY_KEYS}
        config = _teacher_config(options, host, source, text, ("teachers", i), where)
        out.append(NamedTeacher(name, float(weight), config))
    return out


def _judge(value: Any, host: PluginHost, source: str, text: str) -> JudgeSpec:
    def where(key: str) -> Location:
        line = find_line(text, ("judge", key)) or find_line(text, ("judge",)) or _header_line(text, "judge")
        return Location(source, line, f"judge.{key}")

    if not isinstance(value, dict):
        raise ConfigError(
            '\'judge\' must be a table: judge = { model = "...", rubric = "...", threshold = 7 }',
            where=Location(source, find_line(text, ("judge",)), "judge"),
        )
    own = {k: v for k, v in value.items() if k in JUDGE_KEYS}
    try:
        options = JudgeOptions.model_validate(own)
    except ValidationError as exc:
        raise _errors_to_config_error(exc, JudgeOptions, source, text, root=("judge",)) from None
    low, high = options.bounds
    if options.threshold is not None and not low <= options.threshold <= high:
        raise ConfigError(
            f"judge.threshold {options.threshold:g} is outside the judge's scale {options.scale}",
            where=where("threshold"),
            hint='scale = "1-10" (the default) takes thresholds 1..10; scale = "0-1" takes 0..1',
        )
    rest = {k: v for k, v in value.items() if k not in JUDGE_KEYS}
    rest.setdefault("temperature", 0.0)  # a judge should give the same score twice
    config = _teacher_config(rest, host, source, text, ("judge",), where)
    return JudgeSpec(config, options)


def _teacher_config(
    options: dict[str, Any], host: PluginHost, source: str, text: str, root: tuple[Any, ...], where: Any
) -> TeacherConfig:
    """Validate ``options`` with the function that validates ``[teacher]`` (its backend's Config),
    the error's line moved to the entry's own table (find_line finds only the first ``[[teachers]]``)."""
    try:
        return validate_teacher(options, host, source=source, text=text, loc=root)
    except ConfigError as exc:
        if exc.where is not None and exc.where.field:
            exc.where = Location(source, where(exc.where.field.split(".")[-1]).line, exc.where.field)
        raise


def _without_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_none(v) for v in value if v is not None]
    return value


def _header_line(text: str, table: str, *, array: bool = False) -> int | None:
    pattern = re.compile(r"^\s*\[\[\s*" + table + r"\s*\]\]" if array else r"^\s*\[\s*" + table + r"\s*\]\s*(#.*)?$")
    return next((i + 1 for i, line in enumerate(text.splitlines()) if pattern.match(line)), None)


def entry_line(text: str, table: str, index: int, key: str) -> int | None:
    """The line of ``key`` in the ``index``-th ``[[table]]`` of a TOML text (its header line when the
    key is absent); the best guess find_line has for other layouts (inline tables, YAML)."""
    lines = text.splitlines()
    header = re.compile(r"^\s*\[\[\s*" + re.escape(table) + r"\s*\]\]")
    starts = [i for i, line in enumerate(lines) if header.match(line)]
    if index < len(starts):
        key_line = re.compile(r"^\s*[\"']?" + re.escape(key) + r"[\"']?\s*=")
        for i in range(starts[index] + 1, len(lines)):
            if re.match(r"^\s*\[", lines[i]):
                break
            if key_line.match(lines[i]):
                return i + 1
        return starts[index] + 1
    return find_line(text, (table, key)) or find_line(text, (table,))
