"""Turning parsed run-folder content into table rows (plain dicts keyed by column name).

Pure functions, no database: ``ingest`` folds these into the existing rows and writes them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, cast

from stillhouse.kernel.events import Event
from stillhouse.kernel.run_state import RunState, StageState
from stillhouse.registry.parse import to_float, to_int, to_micros, to_text

# The main metric of each built-in task, for runs whose run_started event does not name one.
DEFAULT_PRIMARY_METRIC = {
    "nli": "accuracy",
    "qa": "f1",
    "math": "accuracy",
    "summarization": "rouge_l",
    "conversation": "chrf",
}


def empty_run(run_id: str, run_dir: str) -> dict[str, Any]:
    return {"run_id": run_id, "status": "created", "starts": 0, "run_dir": run_dir}


# The events that move a run's or a stage's status; the kernel's RunState folds them.
_STATUS_EVENTS = frozenset(("run_started", "run_finished", "stage_started", "stage_finished", "stage_failed"))


def fold_rows(run: dict[str, Any], stages: dict[str, dict[str, Any]], events: list[dict[str, Any]]) -> None:
    """Apply a run's new events to its ``runs`` row and its ``stages`` rows (stage -> row), in place.

    Status, attempts and timings come from the kernel's one fold (``RunState``), seeded with what
    the rows already say, because ingest reads only the events appended since the last time.
    Timestamps go through it in microseconds, the rows' unit, so they round-trip exactly. The
    registry's own vocabulary stays as its schema documents it: a stage stopped by an interrupt is
    ``failed``, and ``updated_at`` is the newest timestamp seen."""
    state = _seed(run, stages)
    for event in events:
        kind = event.get("type")
        ts = to_micros(event.get("ts"))
        if ts is not None and (run.get("updated_at") is None or ts > run["updated_at"]):
            run["updated_at"] = ts
        if kind not in _STATUS_EVENTS:
            continue
        state.apply(cast(Event, {**event, "ts": ts}))
        if kind == "run_started":
            run.update(_start_columns(event, run))
        elif kind == "stage_finished" and event.get("summary") is not None:
            stages.setdefault(str(event.get("stage")), {})["summary_json"] = _json(event.get("summary"))
        elif kind in ("stage_started", "stage_failed"):
            stages.setdefault(str(event.get("stage")), {})
    run.update(
        status=state.status,
        error=state.error,
        starts=state.starts,
        created_at=_micros_or_none(state.started),
        finished_at=_micros_or_none(state.finished),
    )
    for name, row in stages.items():
        stage = state.stages.get(name) or StageState(name)
        row.update(
            run_id=run["run_id"],
            stage=name,
            status="failed" if stage.status == "interrupted" else stage.status,
            started_at=_micros_or_none(stage.started),
            finished_at=_micros_or_none(stage.finished),
            seconds=stage.seconds,
            attempts=stage.attempts,
            error=stage.error,
        )


def _seed(run: dict[str, Any], stages: dict[str, dict[str, Any]]) -> RunState:
    state = RunState(
        run_id=run["run_id"],
        status=run.get("status") or "created",
        error=run.get("error"),
        starts=run.get("starts") or 0,
        started=run.get("created_at"),
        finished=run.get("finished_at"),
    )
    for name, row in stages.items():
        state.stages[name] = StageState(
            name,
            status=row.get("status") or "pending",
            started=row.get("started_at"),
            finished=row.get("finished_at"),
            seconds=row.get("seconds"),
            attempts=row.get("attempts") or 0,
            error=row.get("error"),
        )
    return state


def _start_columns(event: dict[str, Any], run: dict[str, Any]) -> dict[str, Any]:
    """The columns a run_started event sets, with the config as the fallback for older events."""
    config: dict[str, Any] = event["config"] if isinstance(event.get("config"), dict) else {}
    task = event.get("task") or config.get("task")
    return {
        "name": event.get("name") or config.get("name") or run.get("name"),
        "kind": event.get("kind") or config.get("kind") or "pipeline",
        "task": task,
        "teacher_model": event.get("teacher_model") or _get(config, "teacher", "model"),
        "student_model": event.get("student_model") or _get(config, "student", "model"),
        "primary_metric": event.get("primary_metric") or DEFAULT_PRIMARY_METRIC.get(task or ""),
        "config_json": json.dumps(config, sort_keys=True, ensure_ascii=False, default=str),
        "config_hash": event.get("config_hash"),
        "pid": to_int(event.get("pid")),
    }


def _micros_or_none(value: float | None) -> int | None:
    return None if value is None else int(value)


def _get(config: dict[str, Any], section: str, key: str) -> Any:
    value = config.get(section)
    return value.get(key) if isinstance(value, dict) else None


def flatten_params(run_id: str, config: dict[str, Any]) -> list[dict[str, Any]]:
    """The config as one row per leaf; tables in lists get their index in the key."""
    rows: list[dict[str, Any]] = []

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict) and value:
            for key, item in value.items():
                walk(f"{prefix}.{key}" if prefix else str(key), item)
        elif isinstance(value, list) and any(isinstance(item, (dict, list)) for item in value):
            for index, item in enumerate(value):
                walk(f"{prefix}.{index}", item)
        else:
            rows.append({"run_id": run_id, "key": prefix, **_param_value(value)})

    walk("", config)
    return rows


def _param_value(value: Any) -> dict[str, Any]:
    if value is None:
        return {"value": None, "value_num": None, "type": "null"}
    if isinstance(value, bool):
        return {"value": "true" if value else "false", "value_num": float(value), "type": "boolean"}
    if isinstance(value, int):
        return {"value": str(value), "value_num": float(value), "type": "integer"}
    if isinstance(value, float):
        return {"value": json.dumps(value), "value_num": value, "type": "number"}
    if isinstance(value, str):
        return {"value": value, "value_num": None, "type": "string"}
    if isinstance(value, dict):  # an empty table
        return {"value": "{}", "value_num": None, "type": "table"}
    return {"value": json.dumps(value, ensure_ascii=False, default=str), "value_num": None, "type": "list"}


def plugins_from(run_id: str, event: dict[str, Any]) -> list[dict[str, Any]]:
    """Plugins a run used: the run_started event's ``plugins`` list when present, else the plugin
    names its config selects."""
    listed = event.get("plugins")
    if isinstance(listed, list) and listed:
        return [
            {
                "run_id": run_id,
                "kind": to_text(p.get("kind")),
                "name": to_text(p.get("name")),
                "package": to_text(p.get("package")),
                "version": to_text(p.get("version")),
            }
            for p in listed
            if isinstance(p, dict) and p.get("kind") and p.get("name")
        ]
    config: dict[str, Any] = event["config"] if isinstance(event.get("config"), dict) else {}
    chosen: list[tuple[str, Any]] = [
        ("task", config.get("task") or event.get("task")),
        ("teacher", _get(config, "teacher", "backend")),
        ("student", _get(config, "student", "trainer")),
        ("loss", _get(config, "train", "loss")),
    ]
    chosen += [("evaluator", name) for name in _get(config, "evaluate", "evaluators") or []]
    chosen += [("reporter", name) for name in _get(config, "report", "reporters") or []]
    return [
        {"run_id": run_id, "kind": kind, "name": str(name), "package": None, "version": None}
        for kind, name in chosen
        if name
    ]


def teacher_call_row(run_id: str, event: dict[str, Any]) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "sample_id": to_text(event.get("sample_id")),
        "split": to_text(event.get("split")),
        "model": to_text(event.get("model")),
        "cache_key": to_text(event.get("cache_key")),
        "cache_hit": bool(event.get("cache_hit")),
        "prompt_tokens": to_int(event.get("prompt_tokens")),
        "completion_tokens": to_int(event.get("completion_tokens")),
        "cost_usd": to_float(event.get("cost_usd")),
        "latency_ms": to_float(event.get("latency_ms")),
        "error": to_text(event.get("error")),
        "ts": to_micros(event.get("ts")),
        "teacher": to_text(event.get("teacher")) or None,
    }


def progress_row(run_id: str, event: dict[str, Any]) -> dict[str, Any]:
    done, total = to_float(event.get("done")), to_float(event.get("total"))
    return {
        "run_id": run_id,
        "key": f"progress/{event.get('stage')}",
        "context": "progress",
        "step": to_int(done),
        "value": done / total if done is not None and total else None,
        "ts": to_micros(event.get("ts")),
    }


def eval_row(run_id: str, role: Any, metric: dict[str, Any], model: Any = None) -> dict[str, Any]:
    hib = metric.get("higher_is_better")
    return {
        "run_id": run_id,
        "role": to_text(role),
        "metric": to_text(metric.get("metric") or metric.get("name")),
        "value": to_float(metric.get("value")),
        "n": to_int(metric.get("n")),
        "reason": to_text(metric.get("reason")),
        "model": to_text(metric.get("model") or model),
        "higher_is_better": hib if isinstance(hib, bool) else None,
        "unit": to_text(metric.get("unit")),
    }


def result_rows(run_id: str, results: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows of the evaluation results: {role: {model, info, metrics: [Metric as dict]}}."""
    rows = []
    for role, entry in results.items():
        if not isinstance(entry, dict):
            continue
        for metric in entry.get("metrics") or []:
            if isinstance(metric, dict) and (metric.get("name") or metric.get("metric")):
                rows.append(eval_row(run_id, role, metric, entry.get("model")))
    return rows


def sweep_result_row(run_id: str, event: dict[str, Any]) -> dict[str, Any]:
    """A ``sweep_trial`` event (plugins/sweep appends it to a trial's run once Optuna was told)."""
    objectives, directions, values = (_list(event.get(k)) for k in ("objectives", "directions", "values"))
    params = event.get("params")
    return {
        "run_id": run_id,
        "sweep_id": to_text(event.get("sweep_id")),
        "trial": to_int(event.get("trial")),
        "state": to_text(event.get("state")),
        "objective": to_text(objectives[0]) if objectives else None,
        "direction": to_text(directions[0]) if directions else None,
        "value": to_float(values[0]) if values else None,
        "second_objective": to_text(objectives[1]) if len(objectives) > 1 else None,
        "second_value": to_float(values[1]) if len(values) > 1 else None,
        "n_trials": to_int(event.get("n_trials")),
        "pruned_at_step": to_int(event.get("pruned_at_step")),
        "params_json": _json(params) if isinstance(params, dict) else None,
        "error": to_text(event.get("error")),
        "ts": to_micros(event.get("ts")),
    }


def artifact_row(run_id: str, event: dict[str, Any]) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "name": to_text(event.get("name")),
        "path": to_text(event.get("path")),
        "bytes": to_int(event.get("bytes")),
        "ts": to_micros(event.get("ts")),
    }


def log_row(run_id: str, event: dict[str, Any]) -> dict[str, Any]:
    failed = event.get("type") == "stage_failed"
    return {
        "run_id": run_id,
        "ts": to_micros(event.get("ts")),
        "level": "error" if failed else to_text(event.get("level") or "info"),
        "stage": to_text(event.get("stage")),
        "message": to_text(event.get("error") if failed else event.get("message")),
    }


def sample_row(run_id: str, sample: dict[str, Any]) -> dict[str, Any]:
    targets: list[Any] = sample["targets"] if isinstance(sample.get("targets"), list) else []
    first = targets[0] if targets and isinstance(targets[0], dict) else {}
    accepted = sample.get("accepted")
    return {
        "run_id": run_id,
        "split": to_text(sample.get("split")),
        "sample_id": to_text(sample.get("sample_id")),
        "accepted": bool(accepted) if accepted is not None else None,
        "reason": to_text(sample.get("reason")),
        "confidence": to_float(sample.get("confidence")),
        "prompt": _json(sample.get("prompt")),
        "teacher_output": to_text(sample.get("teacher_output")),
        "parsed_answer": to_text(sample.get("parsed_answer")),
        "rationale": to_text(sample.get("rationale")),
        "reference": to_text(sample.get("reference")),
        "target": to_text(first.get("target")),
        "n_targets": len(targets),
        "targets_json": _json(targets) if targets else None,
        "source": to_text(sample.get("source")),
        "teacher": to_text(sample.get("teacher")) or None,
        "judge_score": to_float(sample.get("judge_score")),
    }


def eval_sample_row(run_id: str, role: str, row: dict[str, Any]) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "role": to_text(row.get("role") or role),
        "sample_id": to_text(row.get("sample_id")),
        "model": to_text(row.get("model")),
        "prompt": _json(row.get("prompt")),
        "output": to_text(row.get("output")),
        "parsed_answer": to_text(row.get("parsed_answer")),
        "reference": to_text(row.get("reference")),
        "latency_ms": to_float(row.get("latency_ms")),
        "error": to_text(row.get("error")),
    }


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False, default=str)


def last_by(rows: Iterable[dict[str, Any]], *keys: str) -> list[dict[str, Any]]:
    """Keep the last row for each key tuple (later events supersede earlier ones)."""
    latest: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in rows:
        latest[tuple(row[k] for k in keys)] = row
    return list(latest.values())
