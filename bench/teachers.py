"""Several teachers on SNLI: the accepted-label accuracy and teacher cost of one teacher, a vote and a cascade.

    python bench/teachers.py                  # 500 SNLI rows, 3 oracle seeds (a few minutes on 2 cores)
    python bench/teachers.py --n 200 --seeds 1

The teachers are "models" of :mod:`stillhouse.testing.fake_openai` in oracle mode, one server: ``t70``
and ``t80`` right with probability 0.7 and 0.8 (and ``t75``, 0.75, for the three-teacher vote),
each with its own seed, so their errors are independent. Prices (USD per million tokens, in/out):
t70 0.15/0.6 (cheap), t75 1/4, t80 3/15 (expensive). Rows come from ../shared/data/nli/snli_dev.jsonl.

The pipeline (generate + filter, in-process, a fresh cache per mode so every call is paid) sees the
rows *without* their labels, as unlabelled data a teacher labels; the gold labels stay with the
oracles and this script, which scores the samples the filter accepted. Modes:

- ``single-t70``, ``single-t80``: one ``[teacher]``;
- ``vote-2x1``: t70 + t80, one answer each (weights 0.7 / 0.8): two voices cannot outvote the
  heavier one, so this is t80's accuracy at both teachers' cost (the honest baseline for two teachers);
- ``vote-2x3``: t70 + t80 with 3 samples each, the weighted vote of 6 answers;
- ``vote-3``: t70 + t75 + t80, one sample each; ``vote-3-agree``: the same with min_agreement 0.6;
- ``cascade``: t70 with 3 samples first, t80 only for rows where t70's samples disagree;
- ``cascade-gold``: the rows *with* labels: t70 first, t80 for rows whose t70 label fails the check
  against the gold label (accuracy of accepted labels is 1 by construction there: compare yield and cost).

Prints n, and per mode the mean (and sd over seeds) of: accepted-label accuracy, yield (accepted / n),
calls per teacher and cost; writes bench/results/teachers.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SHARED = next(
    (p / "shared" / "data" for p in (ROOT.parent, ROOT.parent.parent) if (p / "shared" / "data").exists()),
    ROOT.parent / "shared" / "data",
)
ACCURACY = {"t70": 0.7, "t75": 0.75, "t80": 0.8}
PRICES = {"t70": (0.15, 0.6), "t75": (1.0, 4.0), "t80": (3.0, 15.0)}
LABELS = {"entailment", "neutral", "contradiction"}


def teacher_toml(
    name: str, url: str, *, table: str = "[[teachers]]", weight: float | None = None, samples: int = 1
) -> str:
    lines = [
        table,
        *([f'name = "{name}"', f"weight = {weight}"] if table == "[[teachers]]" else []),
        f'model = "openai/{name}"',
        f'api_base = "{url}"',
        'api_key_env = "BENCH_TEACHERS_KEY"',
        f"temperature = {0.7 if samples > 1 else 0.0}",
        f"samples = {samples}",
        "concurrency = 16",
        "max_retries = 1",
        f"price = {{ input_per_mtok = {PRICES[name][0]}, output_per_mtok = {PRICES[name][1]} }}",
    ]
    return "\n".join(lines) + "\n"


def modes(url: str) -> dict[str, tuple[str, bool]]:
    """mode -> (config body, whether the pipeline sees the labels)."""
    t = teacher_toml
    return {
        "single-t70": (t("t70", url, table="[teacher]"), False),
        "single-t80": (t("t80", url, table="[teacher]"), False),
        "vote-2x1": (t("t70", url, weight=0.7) + t("t80", url, weight=0.8), False),
        "vote-2x3": (t("t70", url, weight=0.7, samples=3) + t("t80", url, weight=0.8, samples=3), False),
        "vote-3": (t("t70", url, weight=1) + t("t75", url, weight=1) + t("t80", url, weight=1), False),
        "vote-3-agree": (
            "[ensemble]\nmin_agreement = 0.6\n"
            + t("t70", url, weight=1)
            + t("t75", url, weight=1)
            + t("t80", url, weight=1),
            False,
        ),
        "cascade": (
            '[ensemble]\nmode = "cascade"\n' + t("t70", url, weight=1, samples=3) + t("t80", url, weight=1),
            False,
        ),
        "cascade-gold": ('[ensemble]\nmode = "cascade"\n' + t("t70", url, weight=1) + t("t80", url, weight=1), True),
    }


def run_mode(body: str, labelled: bool, rows: list[dict[str, Any]], folder: Path) -> dict[str, Any]:
    from stillhouse.kernel.config import load_config
    from stillhouse.kernel.pipeline import Pipeline
    from stillhouse.kernel.plugins import get_host

    folder.mkdir(parents=True)
    shown = rows if labelled else [{k: v for k, v in r.items() if k != "label"} for r in rows]
    (folder / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in shown))
    config = folder / "pipeline.toml"
    config.write_text(f'task = "nli"\n{body}\n[data]\ntrain = "train.jsonl"\n[student]\nmodel = "unused"\n')
    os.environ["STILLHOUSE_HOME"] = str(folder / "home")  # a fresh cache: every call is paid
    host = get_host()
    pipeline = Pipeline.create(load_config(config, host), host)
    status = pipeline.execute(["generate", "filter"])
    assert status in ("completed", "incomplete"), status
    gold = {(r["premise"].strip(), r["hypothesis"].strip()): r["label"] for r in rows}
    accepted = correct = 0
    for record in pipeline.run.folder.samples():
        if not record.get("accepted"):
            continue
        lines = dict(line.split(": ", 1) for line in record["prompt"][-1]["content"].splitlines() if ": " in line)
        label = gold[(lines["Premise"].strip(), lines["Hypothesis"].strip())]
        accepted += 1
        correct += record.get("parsed_answer") == label
    calls: dict[str, int] = {}
    cost = 0.0
    for result in pipeline.run.folder.teacher_results():
        name = result.teacher or result.model.rsplit("/", 1)[-1]
        calls[name] = calls.get(name, 0) + 1
        cost += result.cost_usd or 0.0
    return {
        "accuracy": correct / accepted if accepted else None,
        "yield": accepted / len(rows),
        "calls": calls,
        "cost_usd": cost,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=500, help="SNLI rows (from the start of snli_dev.jsonl)")
    parser.add_argument("--seeds", type=int, default=3, help="oracle seeds (spread over seeds)")
    parser.add_argument("--modes", default="", help="comma-separated subset of the modes")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "teachers.json")
    args = parser.parse_args(argv)
    for key, value in {
        "HF_HUB_OFFLINE": "1",
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "BENCH_TEACHERS_KEY": "bench-key",
    }.items():
        os.environ.setdefault(key, value)
    from stillhouse.testing.fake_openai import FakeBehaviour, FakeOpenAIServer
    from stillhouse.testing.oracle import Oracle

    source = SHARED / "nli" / "snli_dev.jsonl"
    rows = [r for r in map(json.loads, source.read_text().splitlines()) if r.get("label") in LABELS]
    seen: set[tuple[str, str]] = set()
    rows = [
        r for r in rows if (r["premise"], r["hypothesis"]) not in seen and not seen.add((r["premise"], r["hypothesis"]))
    ][: args.n]
    per_mode: dict[str, list[dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        gold_file = Path(tmp) / "gold.jsonl"
        gold_file.write_text("".join(json.dumps(r) + "\n" for r in rows))
        for seed in range(args.seeds):
            oracles = {
                name: Oracle(gold_file, "nli", p=p, seed=100 * seed + i) for i, (name, p) in enumerate(ACCURACY.items())
            }
            with FakeOpenAIServer(FakeBehaviour(models=oracles)) as server:
                for mode, (body, labelled) in modes(server.url).items():
                    if args.modes and mode not in args.modes.split(","):
                        continue
                    result = run_mode(body, labelled, rows, Path(tmp) / f"{mode}-{seed}")
                    per_mode.setdefault(mode, []).append(result)
                    print(f"seed {seed} {mode}: {json.dumps(result)}", file=sys.stderr, flush=True)

    def mean_sd(values: list[float]) -> tuple[float, float]:
        return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)

    summary: dict[str, Any] = {
        "n": len(rows),
        "seeds": args.seeds,
        "accuracy": ACCURACY,
        "prices_per_mtok": PRICES,
        "modes": {},
    }
    print(f"n = {len(rows)} SNLI rows, {args.seeds} oracle seed(s); mean (sd over seeds)")
    print(f"{'mode':<14} {'accepted acc':>16} {'yield':>14} {'cost USD':>20}  calls per teacher")
    for mode, results in per_mode.items():
        acc = mean_sd([r["accuracy"] for r in results if r["accuracy"] is not None])
        yld = mean_sd([r["yield"] for r in results])
        cost = mean_sd([r["cost_usd"] for r in results])
        names = sorted({n for r in results for n in r["calls"]})
        calls = {n: statistics.fmean([r["calls"].get(n, 0) for r in results]) for n in names}
        summary["modes"][mode] = {"accuracy": acc, "yield": yld, "cost_usd": cost, "calls": calls, "runs": results}
        shown = ", ".join(f"{n} {c:.0f}" for n, c in calls.items())
        print(
            f"{mode:<14} {acc[0]:>9.3f} ({acc[1]:.3f}) {yld[0]:>7.3f} ({yld[1]:.3f}) {cost[0]:>11.5f} ({cost[1]:.5f})  {shown}"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
