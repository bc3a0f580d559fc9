"""Footprint: parameter count, size on disk, peak memory (process RSS, and GPU memory on a GPU).

Local models measure themselves through ``ChatModel.footprint()``. An API model exposes none of
this; its parameter count is taken from the config when the user declared it (``teacher.parameters
= "671B"``, passed on as ``info["parameters"]``) and is otherwise reported as not measured.
"""

from __future__ import annotations

from typing import Any

from stillhouse.kernel.comparison import parse_count
from stillhouse.kernel.errors import ConfigError, Location
from stillhouse.kernel.interfaces import EvalSubject, Evaluator, Metric
from stillhouse.plugins.evaluators.common import is_remote

MEASURES = (
    ("bytes_on_disk", "bytes"),
    ("peak_memory_bytes", "bytes (process peak RSS)"),
    ("gpu_peak_memory_bytes", "bytes (GPU)"),
)


class FootprintEvaluator(Evaluator):
    name = "footprint"
    description = "Parameters, size on disk, peak RSS and GPU memory."

    def evaluate(self, subject: EvalSubject) -> list[Metric]:
        found: dict[str, Any] = subject.model.footprint() if subject.model is not None else {}
        unmeasured = "not measured: remote API model" if is_remote(subject) else "not measured by this model"
        metrics = [self._parameters(subject, found, unmeasured)]
        for name, unit in MEASURES:
            value = found.get(name)
            reason = None
            if value is None:
                reason = found.get(f"{name}_reason") or unmeasured
                if name == "gpu_peak_memory_bytes" and found:  # the model measured itself, just not on a GPU
                    reason = "not measured: the model did not run on a GPU"
            metrics.append(
                Metric(
                    name,
                    float(value) if value is not None else None,
                    n=1,
                    reason=reason,
                    higher_is_better=False,
                    unit=unit,
                )
            )
        return metrics

    def _parameters(self, subject: EvalSubject, found: dict[str, Any], unmeasured: str) -> Metric:
        if found.get("parameters") is not None:
            return Metric("parameters", float(found["parameters"]), n=1, higher_is_better=None, unit="params")
        declared = subject.info.get("parameters")
        if declared in (None, ""):
            return Metric(
                "parameters",
                None,
                n=1,
                reason=f'{unmeasured}; declare it with teacher.parameters (e.g. "671B")',
                higher_is_better=None,
            )
        try:
            count = parse_count(declared)
        except ValueError:
            raise ConfigError(
                f"parameter count '{declared}' of {subject.model_name} is not a number",
                where=Location(field="teacher.parameters"),
                hint='write a count such as "671B", "8B" or "135M"',
            ) from None
        return Metric("parameters", count, n=1, higher_is_better=None, unit="params (declared in config)")
