"""Footprint: parameter count, size on disk, weights in memory, peak working memory, peak RSS and
GPU memory.

``weights_bytes`` is parameters × dtype size as loaded (from ``ChatModel.footprint()``);
``peak_working_memory_bytes`` is what answering needs beyond the weights (see ``memory.py``).

Parameters and size on disk come from ``ChatModel.footprint()``. Memory is measured here, per
model: the model answers one batch of evaluation prompts while :func:`watch_memory` samples the
process RSS and (when the model runs on a GPU) the CUDA allocator's peak, because the process-wide
high-water marks a model could report would carry an earlier model's peak into a later model's
row. An API model exposes none of this; its parameter count is taken from the config when the user
declared it (``teacher.parameters = "671B"``, passed on as ``info["parameters"]``) and is otherwise
reported as not measured.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from stillhouse.kernel.comparison import parse_count
from stillhouse.kernel.errors import ConfigError, Location
from stillhouse.kernel.interfaces import EvalSubject, Evaluator, Metric, StrictModel
from stillhouse.plugins.evaluators.common import is_remote, setting
from stillhouse.plugins.evaluators.memory import Watched, watch_memory
from stillhouse.plugins.evaluators.weights import local_path, parameters_on_disk
from stillhouse.plugins.hf_models import folder_bytes


class FootprintConfig(StrictModel):
    watch_prompts: int = Field(
        8, ge=0, description="Prompts answered in one batch while memory is watched (0: use the model's own numbers)."
    )


class FootprintEvaluator(Evaluator[FootprintConfig]):
    name = "footprint"
    description = "Parameters, size on disk, peak RSS and GPU memory while the model answers."
    Config = FootprintConfig

    def evaluate(self, subject: EvalSubject) -> list[Metric]:
        reported = subject.model.footprint() if subject.model is not None else {}
        found: dict[str, Any] = {k: v for k, v in reported.items() if v is not None}
        if not is_remote(subject) and ("parameters" not in found or "bytes_on_disk" not in found):
            found = {**_from_weight_files(subject), **found}
        unmeasured = "not measured: remote API model" if is_remote(subject) else "not measured by this model"
        on_gpu = found.get("gpu_peak_memory_bytes") is not None or str(found.get("device", "")).startswith("cuda")
        watched, count = self._watch(subject, on_gpu)
        disk = found.get("bytes_on_disk")
        weights = found.get("weights_bytes")
        metrics = [
            self._parameters(subject, found, unmeasured),
            _bytes("bytes_on_disk", disk, 1, "bytes", None if disk is not None else unmeasured),
            _bytes(
                "weights_bytes", weights, 1, "bytes (parameters × dtype size, as loaded)", None if weights is not None else unmeasured
            ),
        ]
        if watched is not None:
            during = f"while answering {count} prompts at once"
            rss_reason = None if watched.rss_peak_bytes is not None else "not measured: no /proc on this system"
            metrics.append(
                _bytes("peak_memory_bytes", watched.rss_peak_bytes, count, f"bytes (process RSS {during})", rss_reason)
            )
            where = "CUDA allocations" if watched.gpu_peak_bytes is not None else "C heap in use (glibc allocator)"
            working_reason = None if watched.working_bytes is not None else "not measured: no allocator statistics here"
            metrics.append(
                _bytes(
                    "peak_working_memory_bytes",
                    watched.working_bytes,
                    count,
                    f"bytes (peak rise of {where} {during}: activations, KV cache; not the weights)",
                    working_reason,
                )
            )
            gpu_reason = None if watched.gpu_peak_bytes is not None else "not measured: the model did not run on a GPU"
            metrics.append(
                _bytes(
                    "gpu_peak_memory_bytes",
                    watched.gpu_peak_bytes,
                    count,
                    f"bytes (CUDA allocated {during})",
                    gpu_reason,
                )
            )
            return metrics
        for name in ("peak_memory_bytes", "gpu_peak_memory_bytes"):
            value = found.get(name)
            metrics.append(
                _bytes(name, value, 1, "bytes (as the model reported)", None if value is not None else unmeasured)
            )
        return metrics

    def _watch(self, subject: EvalSubject, on_gpu: bool) -> tuple[Watched | None, int]:
        """Memory over one batched answer of the first prompts; None for remote or absent models."""
        count = min(self.config.watch_prompts, len(subject.examples))
        if subject.model is None or is_remote(subject) or count == 0:
            return None, 0
        prompts = [subject.task.student_messages(e) for e in subject.examples[:count]]
        model = subject.model
        _, watched = watch_memory(
            lambda: model.answer(prompts, max_new_tokens=int(setting(subject, "max_new_tokens")), batch_size=count),
            gpu=on_gpu,
        )
        return watched, count

    def _parameters(self, subject: EvalSubject, found: dict[str, Any], unmeasured: str) -> Metric:
        if found.get("parameters") is not None:
            unit = "params (counted in the weight files)" if found.get("from_files") else "params"
            return Metric("parameters", float(found["parameters"]), n=1, higher_is_better=None, unit=unit)
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


def _from_weight_files(subject: EvalSubject) -> dict[str, Any]:
    """Parameters and size on disk of a local model that does not report them (a local teacher)."""
    spec = str(subject.info.get("model") or subject.model_name)
    path = local_path(spec) if spec else None
    if path is None:
        return {}
    count = parameters_on_disk(path)
    found: dict[str, Any] = {"bytes_on_disk": folder_bytes(str(path))}
    if count is not None:
        found.update(parameters=count, from_files=True)
    return found


def _bytes(name: str, value: float | None, n: int, unit: str, reason: str | None) -> Metric:
    return Metric(
        name, float(value) if value is not None else None, n=n, reason=reason, higher_is_better=False, unit=unit
    )
