"""``--format hf``: a transformers folder (safetensors), optionally cast to another dtype."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Literal

from stillhouse.kernel.errors import ModelError
from stillhouse.kernel.interfaces import Exporter, StrictModel

# The files save_pretrained writes for the weights; everything else (tokenizer, model card) is copied.
WEIGHT_FILES = (
    "*.safetensors",
    "*.safetensors.index.json",
    "*.bin",
    "*.bin.index.json",
    "config.json",
    "generation_config.json",
)
DTYPES = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}


class HfExportConfig(StrictModel):
    dtype: Literal["auto", "bf16", "fp16", "fp32"] = "auto"
    """``auto`` keeps the dtype the student was saved in, which is the dtype it was trained in."""


class HfExporter(Exporter[HfExportConfig]):
    name = "hf"
    description = "Hugging Face transformers folder (safetensors); --dtype bf16|fp16|fp32."
    Config = HfExportConfig

    def export(self, source: Path, dest: Path) -> list[Path]:
        dtype = self.config.dtype
        if dtype == "auto" or saved_dtype(source) == DTYPES[dtype]:
            if not any(source.glob("*.safetensors")):
                return self._resave(source, dest, None)  # old .bin weights: rewrite as safetensors
            shutil.copytree(source, dest, dirs_exist_ok=True)
        else:
            self._resave(source, dest, DTYPES[dtype])
        return sorted(p for p in dest.rglob("*") if p.is_file())

    def _resave(self, source: Path, dest: Path, dtype: str | None) -> list[Path]:
        import torch
        from transformers import AutoModelForCausalLM

        shutil.copytree(source, dest, ignore=shutil.ignore_patterns(*WEIGHT_FILES), dirs_exist_ok=True)
        try:
            model = AutoModelForCausalLM.from_pretrained(source, dtype=getattr(torch, dtype) if dtype else "auto")
        except (OSError, ValueError) as exc:
            raise ModelError(f"cannot load the student in {source}: {exc}") from None
        model.save_pretrained(dest, safe_serialization=True)
        return sorted(p for p in dest.rglob("*") if p.is_file())


def saved_dtype(folder: Path) -> str | None:
    """The dtype a transformers folder's config records (``dtype``, or ``torch_dtype`` before v5)."""
    path = folder / "config.json"
    if not path.exists():
        return None
    config = json.loads(path.read_text())
    return config.get("dtype") or config.get("torch_dtype")
