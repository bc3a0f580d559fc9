"""``still eval``: evaluate one model alone on a task's data and record it as an evaluation run.

The run folder is a normal one (so the registry ingests it and the TUI lists it), its events and
hooks those of the kernel's RunLifecycle: ``run_started`` with ``kind: "eval"``, ``teacher_model:
None`` and the model as ``student_model``; the evaluate stage's events with role ``model``;
``eval/model.jsonl``, ``eval/results.json``, ``report.md``; ``run_finished``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from stillhouse.kernel.errors import DataError, Location
from stillhouse.kernel.interfaces import EvalRole, EvaluateConfig, Metric, ReportInput, TaskType
from stillhouse.kernel.lifecycle import RunLifecycle
from stillhouse.kernel.run_folder import EvalResults
from stillhouse.kernel.runs import Run, config_hash

ROLE: EvalRole = "model"


def _is_remote(model: str) -> bool:
    """The rule kernel.evaluation.chat_model_for applies: hf/... and existing paths run locally."""
    return not (model.startswith("hf/") or Path(model).exists())


def evaluate_model(
    host: Any,
    *,
    model: str,
    task_name: str,
    data: Path,
    limit: int | None = None,
    api_base: str | None = None,
    api_key_env: str | None = None,
    fields: dict[str, str] | None = None,
    evaluate: EvaluateConfig | None = None,
    name: str | None = None,
    home: Path | None = None,
) -> tuple[Run, list[Metric], str]:
    """Evaluate ``model`` on ``data``; return the run, its metrics and the task's primary metric."""
    from stillhouse.kernel.data import load_split
    from stillhouse.kernel.evaluation import chat_model_for, evaluate_role
    from stillhouse.plugins.exporters.artifacts import resolve_exported
    from stillhouse.plugins.reports.markdown import MarkdownReporter

    model = resolve_exported(model)
    task_cls = host.get(TaskType, task_name)
    task = task_cls(task_cls.Config())
    if not data.exists():
        raise DataError(
            f"data file not found: {data}",
            where=Location(file=str(data)),
            hint="--data takes a JSONL, CSV or Parquet file",
        )
    evaluate = evaluate or EvaluateConfig(limit=limit)  # roles are the pipeline's; one model here
    examples = load_split(task, data, "test", limit=limit, mapping=fields or {}).examples
    if not examples:
        raise DataError(f"{data} has no rows to evaluate", where=Location(file=str(data)))
    config = {
        "kind": "eval",
        "name": name,
        "task": task_name,
        "model": model,
        "api_base": api_base,
        "api_key_env": api_key_env,  # the variable's name, never its value
        "data": {"test": str(data.resolve()), "limit": limit, "fields": fields or {}},
        "evaluate": evaluate.model_dump(mode="json"),
    }
    run = Run.create(name or f"eval-{Path(model).name}", config, home)
    run.folder.write_config(config)
    with RunLifecycle(run, host).start(
        name=name,
        kind="eval",
        task=task_name,
        teacher_model=None,
        student_model=model,
        primary_metric=task.primary_metric,
        config=config,
        config_hash=config_hash(config),
        resumed=False,
        stages=["evaluate"],
    ) as life:
        with life.stage("evaluate") as stage:
            chat, model_name, info = chat_model_for(host, model, api_base=api_base, api_key_env=api_key_env)
            info.update(remote=_is_remote(model), batch_size=evaluate.batch_size, max_new_tokens=evaluate.max_new_tokens)
            info.setdefault("usd_per_hour", evaluate.usd_per_hour)
            if model.endswith(".gguf"):
                # transformers dequantises a GGUF file to float weights: the answers and metrics are the
                # quantized weights', the size on disk the file's, but speed and memory are not llama.cpp's.
                info["runtime"] = "transformers (GGUF dequantised to float32)"
            try:
                metrics = evaluate_role(
                    ROLE, model_name, chat, task, examples, evaluate, host, run.folder.eval_dir, info=info, emit=life.emit
                )
            finally:
                chat.close()
            metrics = [_own_flag_hint(m) for m in metrics]
            results: EvalResults = {ROLE: {"model": model_name, "info": info, "metrics": [vars(m) for m in metrics]}}
            run.folder.write_results(results)
            stage.summary = {"split": "test", "n": len(examples), "roles": {ROLE: _primary(metrics, task.primary_metric)}}
        report = ReportInput(run.id, run.dir, config, {ROLE: metrics}, task.primary_metric)
        for path in MarkdownReporter().write(report):
            life.emit("artifact", name=f"report:{path.name}", path=path.name, bytes=path.stat().st_size)
    return run, metrics, task.primary_metric


def _own_flag_hint(metric: Metric) -> Metric:
    """Evaluators hint at the pipeline config key; `still eval` has no config file, so name its flag."""
    if metric.reason and "evaluate.usd_per_hour" in metric.reason:
        metric.reason = metric.reason.replace("set evaluate.usd_per_hour", "pass --usd-per-hour").replace(
            "evaluate.usd_per_hour", "--usd-per-hour"
        )
    return metric


def _primary(metrics: list[Metric], name: str) -> dict[str, float | None]:
    return {m.name: m.value for m in metrics if m.name == name}
