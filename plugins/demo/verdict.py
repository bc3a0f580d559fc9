"""The demo's closing sentence: what its own measured numbers mean, shortfalls included.

Built from the run's evaluation results only: a number that was not measured is left out,
never guessed, and a weak result is called weak (DESIGN.md §8).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from stillhouse.kernel.comparison import retention
from stillhouse.kernel.run_folder import RunFolder
from stillhouse.kernel.run_state import fold
from stillhouse.kernel.stats import overlap, ratio_interval

QUANTIZED_SIZE = "bytes_on_disk_gguf_q8_0"
"""The student metric ``evaluate.export = ["gguf:q8_0"]`` records (plugins/exporters/after_evaluate.py)."""


def _metric(results: dict[str, Any], role: str, name: str) -> float | None:
    for metric in results.get(role, {}).get("metrics", []):
        if metric.get("name") == name and metric.get("value") is not None:
            return float(metric["value"])
    return None


def _interval(results: dict[str, Any], role: str, name: str) -> tuple[float, float, float, int] | None:
    """(median, low, high, n) of a metric measured with its interval, else None."""
    for metric in results.get(role, {}).get("metrics", []):
        if metric.get("name") == name and None not in (metric.get("value"), metric.get("low"), metric.get("high")):
            return float(metric["value"]), float(metric["low"]), float(metric["high"]), int(metric.get("n") or 0)
    return None


def _per_token_speed(results: dict[str, Any]) -> str | None:
    """The interleaved timing's per-token decode ratio with its interval, said as significant or not."""
    teacher, student = (_interval(results, role, "decode_ms_per_token") for role in ("teacher", "student"))
    if teacher is None or student is None or student[0] <= 0:
        return None
    bounds = ratio_interval((teacher[1], teacher[2]), (student[1], student[2]))
    if bounds is None:
        return None
    ratio, n = teacher[0] / student[0], min(teacher[3], student[3])
    where = f"(interval {bounds[0]:.1f}-{bounds[1]:.1f}, {n} timed requests each)"
    if not overlap((teacher[1], teacher[2]), (student[1], student[2])):
        return f"decodes each token {ratio:.1f}x as fast as the teacher {where}"
    return f"decodes at a per-token speed not significantly different from the teacher's ({ratio:.1f}x, {where[1:]}"


def closing_sentence(results: dict[str, Any], primary: str, accepted: int | None = None) -> str:
    """One sentence on quality (with retention and the baseline), size and speed, as measured."""
    teacher, baseline, student = (_metric(results, role, primary) for role in ("teacher", "baseline", "student"))
    label = primary.replace("_", "-").upper() if primary.startswith("rouge") else primary.replace("_", " ")
    if teacher is None or student is None:
        return f"The run measured no {label} for both teacher and student, so this demo shows nothing about quality."
    retained = retention(student, teacher)
    parts = [f"The distilled student scores {label} {student:.3f} against the teacher's {teacher:.3f}"]
    if retained is not None:
        parts[0] += f" ({retained:.0%} retained"
        parts[0] += f", from an untrained {baseline:.3f})" if baseline is not None else ")"
    if accepted is not None:
        parts[0] += f" after learning from {accepted} accepted teacher answers"
    if baseline is not None and student <= baseline:
        verdict = "so distillation did not improve it"
    elif retained is not None and retained >= 0.9:
        verdict = "so it keeps most of the teacher's quality"
    elif retained is not None and retained >= 0.6:
        verdict = "so it falls short of the teacher, though distillation clearly helped"
    else:
        verdict = "so it falls well short of the teacher: more samples and training would be needed"
    extras = []
    params = (_metric(results, "student", "parameters"), _metric(results, "teacher", "parameters"))
    if all(params) and params[1]:
        extras.append(f"has {params[0] / params[1]:.0%} of the teacher's parameters")  # type: ignore[operator]
    disk = (_metric(results, "student", "bytes_on_disk"), _metric(results, "teacher", "bytes_on_disk"))
    if all(disk) and disk[1]:
        ratio = disk[0] / disk[1]  # type: ignore[operator]
        text = f"is {ratio:.1f}x the teacher's size on disk" + (" (the teacher file is quantized)" if ratio > 1 else "")
        quantized = _metric(results, "student", QUANTIZED_SIZE)
        if quantized:
            text += f", {quantized / disk[1]:.1f}x as a q8_0 GGUF file ({quantized / 2**20:.0f} MiB)"
        extras.append(text)
    per_token = _per_token_speed(results)
    speed = (_metric(results, "student", "throughput_tokens_per_s"), _metric(results, "teacher", "throughput_tokens_per_s"))
    if per_token is not None:
        extras.append(per_token)
    elif all(speed) and speed[1]:
        extras.append(f"generated {speed[0] / speed[1]:.1f}x the teacher's tokens/s in this run")  # type: ignore[operator]
    sentence = parts[0] + ", " + verdict
    if extras:
        sentence += "; it " + ", ".join(extras[:-1]) + (" and " if len(extras) > 1 else "") + extras[-1]
    return sentence + "."


def run_sentence(run_dir: Path, primary: str) -> str | None:
    """The closing sentence of a finished run folder, or None when it has no results."""
    folder = RunFolder(run_dir)
    results = folder.read_results()
    if not results:
        return None
    accepted = fold(folder.events()).summary("filter").get("by_split", {}).get("train", {}).get("accepted")
    return closing_sentence(dict(results), primary, accepted)
