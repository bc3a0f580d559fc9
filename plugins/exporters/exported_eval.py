"""The exported student measured like the others: ``evaluate.export = ["gguf:q8_0"]`` evaluates
each export on the run's evaluation rows with the task metrics and footprint evaluators, and
stores the results under the role ``student-gguf-q8_0`` (kernel.comparison.exported_role), which
the reports show as its own row, "distilled, q8_0 GGUF", and compare with the distilled student.

Cheap by design: the same rows, batch size and ``max_new_tokens`` as the student; no timing phase
(latency and throughput are left to ``bench/export.py``). A GGUF file is loaded by transformers'
GGUF loader, which dequantises it to float32: the answers are the quantized weights', the size on
disk the file's, but memory and speed are not llama.cpp's (``info.runtime`` says so). An ONNX
export runs in onnxruntime (:class:`~stillhouse.plugins.exporters.onnx_runtime.OnnxChatModel`).

Nothing here may end the run: a failed export, a config that no longer loads or a model that
cannot answer becomes a missing primary metric with its reason.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any, cast

from stillhouse.kernel.comparison import exported_role
from stillhouse.kernel.interfaces import ChatModel, EvalRole, EvaluateConfig, Example, Metric, TaskType
from stillhouse.kernel.run_folder import RoleResults
from stillhouse.kernel.runs import Run

EVALUATORS = ("task_metrics", "footprint")
# The report's latency and throughput cells of an export say why they are empty: a GGUF file runs
# dequantised to float32 here, so timing it would show the float32 student's speed under its name.
UNTIMED = ("request_latency_ms", "throughput_tokens_per_s")


def exported_chat_model(host: Any, fmt: str, dest: Path) -> tuple[ChatModel, str, dict[str, Any]]:
    """The export in ``dest`` as a ChatModel: GGUF through transformers, ONNX through onnxruntime,
    anything else as a transformers folder."""
    from stillhouse.kernel.evaluation import chat_model_for

    if fmt == "onnx":
        from stillhouse.plugins.exporters.onnx_runtime import OnnxChatModel

        model = OnnxChatModel.load(dest)
        return model, str(dest), {"model": str(dest), "runtime": model.runtime}
    ggufs = sorted(dest.glob("*.gguf"))
    path = str(ggufs[0]) if len(ggufs) == 1 else str(dest)
    chat, name, info = chat_model_for(host, path)
    if ggufs:
        info["runtime"] = "transformers (GGUF dequantised to float32)"
    info.setdefault("model", path)
    return chat, name, info


def eval_rows(host: Any, run: Run) -> tuple[TaskType, list[Example], EvaluateConfig]:
    """The task, the rows the evaluate stage scored and its settings, from the run's own config."""
    from stillhouse.kernel.config import validate_config
    from stillhouse.kernel.pipeline import Pipeline

    loaded = validate_config(dict(run.config), host, source=str(run.path("config.json")), base_dir=run.dir)
    pipeline = Pipeline(loaded, host, run)
    evaluate = loaded.pipeline.evaluate
    evaluators = [name for name in evaluate.evaluators if name in EVALUATORS]
    return pipeline.task, pipeline.eval_examples(), evaluate.model_copy(update={"evaluators": evaluators})


def not_evaluated(spec: str, primary: str, reason: str, bytes_on_disk: float | None = None) -> RoleResults:
    """The role's entry when the export could not be evaluated: the primary metric missing, with why."""
    metrics = [Metric(primary, None, reason=reason)]
    disk_reason = None if bytes_on_disk is not None else reason
    metrics.append(Metric("bytes_on_disk", bytes_on_disk, n=1, reason=disk_reason, higher_is_better=False, unit="bytes"))
    return {"model": spec, "info": {}, "metrics": [asdict(m) for m in metrics]}


def evaluate_exported(host: Any, run: Run, spec: str, dest: Path, primary: str) -> RoleResults:
    """Evaluate the export of ``spec`` in ``dest`` on the run's evaluation rows (see the module doc)."""
    from stillhouse.kernel.evaluation import evaluate_role

    # EvalRole lists the pipeline's fixed roles; an export's role is built from its spec, and
    # evaluate_role only names files and events with it.
    role = cast(EvalRole, exported_role(spec))
    fmt = spec.partition(":")[0]
    try:
        task, examples, evaluate = eval_rows(host, run)
        chat, name, info = exported_chat_model(host, fmt, dest)
    except Exception as exc:  # noqa: BLE001 - any failure is a missing value with its reason, never a crash
        return not_evaluated(spec, primary, f"not evaluated: {_why(exc)}")
    info.update(export=spec, batch_size=evaluate.batch_size, max_new_tokens=evaluate.max_new_tokens)

    def emit(type_: str, **payload: Any) -> None:
        if type_ == "eval":  # progress events would reopen the finished evaluate stage
            run.emit(type_, **payload)

    try:
        metrics = evaluate_role(role, name, chat, task, examples, evaluate, host, run.folder.eval_dir, info=info, emit=emit)
    except Exception as exc:  # noqa: BLE001 - as above
        return not_evaluated(spec, task.primary_metric, f"evaluation failed: {_why(exc)}")
    finally:
        chat.close()
    measured = {m.name for m in metrics}
    runtime = info.get("runtime") or "the export's runtime"
    why = f"not timed in the pipeline ({runtime}); per-format speed: python bench/export.py"
    metrics += [Metric(n, None, reason=why, higher_is_better=n.startswith("throughput")) for n in UNTIMED if n not in measured]
    return {"model": name, "info": info, "metrics": [asdict(m) for m in metrics]}


def _why(exc: BaseException) -> str:
    from stillhouse.kernel.errors import StillhouseError

    if isinstance(exc, StillhouseError):
        return exc.what
    return f"{type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}"
