"""Run by test_resume's kill -9 test in a subprocess: train, then hang after checkpoint 2 so the
parent can kill the process mid-training at a known point."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from stillhouse.kernel.interfaces import TeacherConfig, TrainJob
from stillhouse.plugins.losses.divergences import ForwardKL
from stillhouse.plugins.students.config import HfStudentConfig, HfTrainConfig
from stillhouse.plugins.students.hf import HfStudentTrainer

sys.path.insert(0, str(Path(__file__).parent))
from helpers import nli_pairs  # noqa: E402


def main(run: Path, student: str, teacher: str) -> None:
    steps = {"n": 0}

    def should_stop() -> bool:
        steps["n"] += 1
        if steps["n"] == 3:  # step 3 done, checkpoint-3 not written yet: wait for the kill
            (run / "hanging").write_text("3")
            time.sleep(600)
        return False

    job = TrainJob(
        run_dir=run,
        output_dir=run / "student",
        checkpoint_dir=run / "checkpoints",
        train=nli_pairs(12),
        validation=[],
        student=HfStudentConfig(model=student, max_length=256),
        train_config=HfTrainConfig(
            loss="forward_kl", learning_rate=3e-3, batch_size=4, max_steps=6, save_steps=1, top_k=8, logging_steps=1
        ),
        loss=ForwardKL(),
        teacher=TeacherConfig(model=f"hf/{teacher}"),
        emit=lambda event: None,
        should_stop=should_stop,
    )
    HfStudentTrainer(job.student).train(job)


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2], sys.argv[3])
