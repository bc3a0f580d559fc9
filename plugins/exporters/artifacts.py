"""What ``still export`` leaves on disk, as other commands meet it (``still eval --model DIR``)."""

from __future__ import annotations

from pathlib import Path


def resolve_exported(model: str) -> str:
    """A folder written by ``still export --format gguf`` (one ``.gguf`` file and a model card, no
    ``config.json``) stands for its GGUF file, so ``--model EXPORT_DIR`` evaluates what was exported."""
    prefix, local = ("hf/", model[3:]) if model.startswith("hf/") else ("", model)
    folder = Path(local)
    if folder.is_dir() and not (folder / "config.json").exists():
        files = sorted(folder.glob("*.gguf"))
        if len(files) == 1:
            return prefix + str(files[0])
    return model
