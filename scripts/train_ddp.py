"""Data-parallel student training on CPU: the same TrainJob under torchrun with several processes.

    torchrun --nproc_per_node 2 scripts/train_ddp.py --out /tmp/ddp-demo [--loss forward_kl]

Every process runs the same code; transformers' Trainer (through accelerate) sees WORLD_SIZE and
RANK, joins a gloo process group (nccl on GPUs), gives each process its share of every batch and
averages gradients. The teacher top-k store is built once by the main process while the others wait
(``main_process_first``); only the main process writes checkpoints, events and the final model.
On a multi-GPU machine the same command with ``--nproc_per_node <gpus>`` (or ``accelerate launch``)
trains with DDP; ``still run`` configs need no change.

Tiny real models are built under ``--out/models`` unless --student/--teacher are given. Writes
``--out/events.jsonl`` and ``--out/summary.json`` (rank 0).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

from stillhouse.kernel.interfaces import TeacherConfig, TrainJob, TrainPair
from stillhouse.kernel.plugins import PluginHost

NLI = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "data" / "nli.jsonl"


def pairs(start: int, n: int) -> list[TrainPair]:
    rows = [json.loads(line) for line in NLI.read_text().splitlines()][start : start + n]
    return [
        TrainPair(
            r["id"],
            [{"role": "user", "content": f"Premise: {r['premise']}\nHypothesis: {r['hypothesis']}"}],
            f"{r['explanation']} Answer: {r['label']}",
        )
        for r in rows
    ]


def tiny_models(out: Path, rank: int) -> tuple[str, str]:
    """Rank 0 builds the models; the others wait for its marker (no process group exists yet)."""
    from stillhouse.testing.tiny import build_tiny_model, build_tiny_tokenizer

    root = out / "models"
    ready = root / "ready"
    if rank == 0 and not ready.exists():
        build_tiny_tokenizer(root / "tokenizer")
        build_tiny_model(root / "student", tokenizer_dir=root / "tokenizer")
        build_tiny_model(root / "teacher", tokenizer_dir=root / "tokenizer", layers=4, hidden=128, seed=1)
        ready.write_text("ok")
    while not ready.exists():
        time.sleep(0.2)
    return str(root / "student"), str(root / "teacher")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--student")
    parser.add_argument("--teacher")
    parser.add_argument("--loss", default="forward_kl")
    parser.add_argument("--epochs", type=float, default=2)
    args = parser.parse_args()
    rank = int(os.environ.get("RANK", "0"))
    args.out.mkdir(parents=True, exist_ok=True)
    student, teacher = (args.student, args.teacher) if args.student and args.teacher else tiny_models(args.out, rank)

    host = PluginHost(entry_points=True)
    loss_cls = host.get("loss", args.loss)
    trainer_cls = host.get("student", "hf")
    events_path = args.out / "events.jsonl"

    def emit(event: dict[str, Any]) -> None:
        if rank == 0:
            with open(events_path, "a") as fh:
                fh.write(json.dumps({"ts": time.time(), **event}) + "\n")

    job = TrainJob(
        run_dir=args.out / "run",
        output_dir=args.out / "run" / "student",
        checkpoint_dir=args.out / "run" / "checkpoints",
        train=pairs(0, 12),
        validation=pairs(12, 4),
        student=trainer_cls.Config(model=student, max_length=256),
        train_config=trainer_cls.Train(  # the hf trainer's [train] model: top_k is one of its options
            loss=args.loss, learning_rate=3e-3, batch_size=2, num_epochs=args.epochs, logging_steps=1, top_k=8
        ),
        loss=loss_cls(),
        teacher=TeacherConfig(model=f"hf/{teacher}"),
        emit=emit,
    )
    outcome = trainer_cls(job.student).train(job)
    if rank == 0:
        result = {"model_dir": str(outcome.model_dir), "steps": outcome.steps, **outcome.summary}
        (args.out / "summary.json").write_text(json.dumps(result, indent=2, default=str))
        print(json.dumps(result, default=str))


if __name__ == "__main__":
    main()
