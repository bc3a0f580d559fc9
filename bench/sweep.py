"""The cost of ``still sweep`` over running the same trials as separate ``still run`` commands, and
the teacher calls a sweep makes per trial after its first.

    python bench/sweep.py                  # 3 trials, 2 rounds: ~10 minutes on 2 shared cores
    python bench/sweep.py --trials 2 --rounds 1

Setup: a tiny 2-layer student (stillhouse.testing.tiny), an NLI pipeline over the test fixture (8
train rows, 4 validation rows), the fake OpenAI server with an oracle teacher (stillhouse.testing)
in this process, over real HTTP.

- teacher calls: a sweep on a fresh home (cold teacher cache); the server counts the answers; the
  first trial's generation answers every prompt once, so calls per later trial =
  (answered - prompts) / (trials - 1). Target 0.
- overhead: with the teacher cache warm, the sweep (``still sweep`` with every trial's parameters
  enqueued, so both sides train the same settings) against the same trials as separate
  ``still run CONFIG --set ...`` processes, scored the same way (the sweep's evaluate settings).
  Rounds alternate the order (sweep first, then runs first ...). Reported: each side's wall time
  per round, and the ratio sweep / runs per round (median, [min, max]). Target <= 1.10. The runs
  side pays a process start per trial that the sweep pays once, so a ratio below 1 is expected;
  the question is whether Optuna's storage and the sweep's bookkeeping cost anything visible.

Writes ``bench/results/sweep.json`` (``--out``) and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "data" / "nli.jsonl"
STILL = [sys.executable, "-c", "from stillhouse.kernel.cli import main; main()"]
KEY = {"BENCH_TEACHER_KEY": "bench-key"}
LEARNING_RATES = [1e-3, 3e-3, 1e-2, 3e-4, 3e-2]


def write_files(folder: Path, api_base: str, student: Path, trials: int) -> tuple[Path, Path, list[float]]:
    rows = [json.loads(line) for line in FIXTURE.read_text().splitlines() if line.strip()]
    (folder / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[:8]))
    (folder / "val.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[8:12]))
    config = folder / "run.toml"
    config.write_text(
        f'''name = "bench-sweep"
task = "nli"
[data]
train = "train.jsonl"
validation = "val.jsonl"
[task_options]
ask_rationale = false
[teacher]
model = "openai/fake-teacher"
api_base = "{api_base}"
api_key_env = "BENCH_TEACHER_KEY"
temperature = 0.0
max_tokens = 32
concurrency = 2
[student]
model = "{student}"
max_length = 512
[train]
num_epochs = 2
batch_size = 4
[evaluate]
max_new_tokens = 4
batch_size = 4
evaluators = ["task_metrics"]
[report]
reporters = ["markdown"]
'''
    )
    rates = LEARNING_RATES[:trials]
    enqueue = ", ".join(f'{{ "train.learning_rate" = {lr} }}' for lr in rates)
    sweep = folder / "sweep.toml"
    sweep.write_text(
        f'''[sweep]
config = "run.toml"
n_trials = {trials}
pruner = "none"
enqueue = [{enqueue}]
[sweep.space]
"train.learning_rate" = {{ type = "float", low = 1e-4, high = 1e-1, log = true }}
'''
    )
    return config, sweep, rates


def timed(args: list[str], home: Path) -> float:
    env = {**os.environ, **KEY, "STILLHOUSE_HOME": str(home)}
    started = time.perf_counter()
    subprocess.run(args, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def separate_runs(config: Path, rates: list[float], home: Path) -> float:
    # The settings a sweep trial runs with (plugins/sweep/trial.py trial_config), as --set.
    same_scoring = ["evaluate.split=\"validation\"", "evaluate.roles=[\"student\"]", "evaluate.timing.enabled=false"]
    total = 0.0
    for lr in rates:
        sets = [f"train.learning_rate={lr}", *same_scoring]
        total += timed([*STILL, "run", str(config), "--quiet", *[a for s in sets for a in ("--set", s)]], home)
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="2 trials, 1 round")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "sweep.json")
    args = parser.parse_args()
    if args.quick:
        args.trials, args.rounds = 2, 1
    os.environ.update({"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"})
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

    from stillhouse.testing.fake_openai import FakeBehaviour, FakeOpenAIServer
    from stillhouse.testing.oracle import Oracle
    from stillhouse.testing.tiny import build_tiny_model

    with tempfile.TemporaryDirectory(prefix="bench-sweep-") as tmp, FakeOpenAIServer(FakeBehaviour(oracle=Oracle(FIXTURE, "nli", p=1.0))) as server:
        work = Path(tmp)
        student = build_tiny_model(work / "student", seed=0)
        config, sweep, rates = write_files(work, server.url, student, args.trials)
        prompts = 12

        cold_home = work / "cold"
        before = server.stats.answered_total
        timed([*STILL, "sweep", str(sweep), "--quiet"], cold_home)
        answered = server.stats.answered_total - before
        per_later_trial = (answered - prompts) / max(args.trials - 1, 1)

        warm_home = work / "warm"
        timed([*STILL, "run", str(config), "--stage", "generate", "--quiet"], warm_home)  # warm the cache
        sweeps, runs, ratios = [], [], []
        for i in range(args.rounds):
            order = ["sweep", "runs"] if i % 2 == 0 else ["runs", "sweep"]
            seconds = {}
            for side in order:
                if side == "sweep":
                    seconds[side] = timed([*STILL, "sweep", str(sweep), "--quiet"], warm_home)
                else:
                    seconds[side] = separate_runs(config, rates, warm_home)
            sweeps.append(seconds["sweep"])
            runs.append(seconds["runs"])
            ratios.append(seconds["sweep"] / seconds["runs"])

    result: dict[str, Any] = {
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()},
        "trials": args.trials,
        "rounds": args.rounds,
        "teacher_prompts": prompts,
        "teacher_answers_cold_sweep": answered,
        "teacher_calls_per_trial_after_first": per_later_trial,
        "sweep_s": sweeps,
        "separate_runs_s": runs,
        "ratio_sweep_over_runs": ratios,
        "ratio_median": statistics.median(ratios),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"teacher: {answered} answers for {prompts} prompts over {args.trials} trials "
          f"-> {per_later_trial:g} calls per trial after the first (target 0)")
    print(f"{'round':<6} {'sweep s':>9} {'runs s':>9} {'ratio':>7}")
    for i, (a, b, r) in enumerate(zip(sweeps, runs, ratios, strict=True)):
        print(f"{i:<6} {a:>9.1f} {b:>9.1f} {r:>7.3f}")
    print(f"ratio sweep / separate runs: median {statistics.median(ratios):.3f} [{min(ratios):.3f}, {max(ratios):.3f}], "
          f"n={len(ratios)} rounds of {args.trials} trials (target <= 1.10)")


if __name__ == "__main__":
    main()
