"""Disk housekeeping for run folders: what a run keeps once it can no longer resume training.

A Hugging Face Trainer checkpoint holds the optimizer's moments (about twice the weights), the
scheduler, the gradient scaler and RNG states: only a resumed training reads them. Once the train
stage has finished they are dead weight (a 4-sample run left a 773 MB optimizer.pt).
"""

from __future__ import annotations

from pathlib import Path

# Files of a checkpoint that only resuming the training reads.
RESUME_STATE = ("optimizer.pt", "scheduler.pt", "scaler.pt", "rng_state.pth", "rng_state_*.pth", "optimizer.bin")


def folder_bytes(path: Path) -> int:
    """Bytes of the files under ``path`` (0 when it does not exist)."""
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else 0


def resume_state_files(checkpoint_dir: Path) -> list[Path]:
    """Optimizer, scheduler, scaler and RNG files of every ``checkpoint-*`` folder under ``checkpoint_dir``."""
    if not checkpoint_dir.is_dir():
        return []
    return sorted({f for pattern in RESUME_STATE for f in checkpoint_dir.glob(f"checkpoint-*/{pattern}") if f.is_file()})


def drop_resume_state(checkpoint_dir: Path) -> int:
    """Delete the resume-only files of the checkpoints under ``checkpoint_dir``; the bytes freed.
    The weights and ``trainer_state.json`` stay (the best checkpoint is still a model)."""
    freed = 0
    for path in resume_state_files(checkpoint_dir):
        size = path.stat().st_size
        path.unlink(missing_ok=True)
        freed += size
    return freed


def human_bytes(n: float) -> str:
    """``1234567`` -> ``"1.2 MB"``."""
    for unit in ("B", "kB", "MB", "GB"):
        if abs(n) < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"  # pragma: no cover - unreachable
