"""``evaluate.export = ["gguf:q8_0"]``: export the distilled student once the evaluate stage has
finished and record each export's size on disk next to the student's other measurements, so the
report shows what a deployment would ship, not only the float32 training output.

Each ``FORMAT[:QUANTIZE]`` is written to ``<run>/exports/FORMAT-QUANTIZE/`` by the format's
exporter (as ``still export`` would) and becomes the student metric
``bytes_on_disk_FORMAT_QUANTIZE``. The export is then evaluated like the student, on the same
rows, and stored as the role ``student-FORMAT-QUANTIZE`` (``exported_eval``): the reports show it
as its own row ("distilled, q8_0 GGUF") with the task metric's change against the student.
An export that fails, or cannot be evaluated, is recorded as a missing value with the reason; the
run goes on.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from stillhouse.kernel.errors import StillhouseError
from stillhouse.kernel.interfaces import Metric
from stillhouse.kernel.runs import Run

MODEL_SUFFIXES = (".gguf", ".onnx", ".safetensors", ".bin", ".data")


def export_metric_name(spec: str) -> str:
    return "bytes_on_disk_" + spec.replace(":", "_")


def model_bytes(files: list[Path]) -> int:
    """Bytes of the weight files among an export's files (not the model card or tokenizer files)."""
    return sum(f.stat().st_size for f in files if f.suffix in MODEL_SUFFIXES)


def export_dir(run_dir: Path, spec: str) -> Path:
    return run_dir / "exports" / spec.replace(":", "-")


def export_and_measure(host: Any, run_dir: Path, spec: str) -> Metric:
    """Export ``run_dir``'s student as ``spec`` into ``run_dir/exports`` and measure it."""
    from stillhouse.plugins.exporters.run_export import export_run, exporter_for

    fmt, _, quantize = spec.partition(":")
    name = export_metric_name(spec)
    unit = f"bytes ({spec} export)"
    try:
        exporter = exporter_for(host, fmt, {"quantize": quantize or None})
        files = export_run(run_dir, export_dir(run_dir, spec), exporter, force=True)
    except StillhouseError as exc:
        return Metric(name, None, n=1, reason=f"export failed: {exc}", higher_is_better=False, unit=unit)
    return Metric(name, float(model_bytes(files)), n=1, higher_is_better=False, unit=unit)


def record_exports(host: Any, run: Run, specs: list[str]) -> list[Metric]:
    """Export the student in each spec, add the sizes to its results (eval/results.json) and
    evaluate each export as its own role."""
    from stillhouse.kernel.comparison import exported_role
    from stillhouse.plugins.exporters.exported_eval import evaluate_exported, not_evaluated

    folder = run.folder
    results = folder.read_results()
    student = results.get("student")
    if not isinstance(student, dict):
        return []
    metrics = [export_and_measure(host, run.dir, spec) for spec in specs]
    names = {m.name for m in metrics}
    student["metrics"] = [m for m in student.get("metrics") or [] if m["name"] not in names]
    student["metrics"] += [asdict(m) for m in metrics]
    folder.write_results(results)
    primary = run.state().primary_metric or "score"
    for spec, size in zip(specs, metrics, strict=True):
        if size.value is None:
            entry = not_evaluated(spec, primary, size.reason or "export failed")
        else:
            entry = evaluate_exported(host, run, spec, export_dir(run.dir, spec), primary)
        results[exported_role(spec)] = entry
        folder.write_results(results)
    return metrics
