"""``still export RUN_ID DIR``: the distilled student of a run, with its tokenizer and model card,
in a folder that ``AutoModelForCausalLM.from_pretrained`` (and ``still serve``) loads.

A LoRA student (``adapter_config.json`` in ``run_dir/student``) is merged into its base model's
weights by default (``student.lora.merge``, or ``--merge-lora``); ``--keep-adapter`` exports the
adapter alone, which transformers loads with peft installed and the base model reachable.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from stillhouse.kernel.errors import Location, ModelError, UserError

# Training state that may sit next to the weights and is of no use to someone loading the model.
TRAINING_STATE = (
    "optimizer.pt",
    "scheduler.pt",
    "rng_state*.pth",
    "trainer_state.json",
    "training_args.bin",
    "checkpoint-*",
)
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model")


def _config(run_dir: Path) -> dict[str, Any]:
    path = run_dir / "config.json"
    return json.loads(path.read_text()) if path.exists() else {}


def _check_paths(run_dir: Path, dest: Path) -> Path:
    source = run_dir / "student"
    if not source.is_dir() or not any(source.iterdir()):
        raise UserError(
            f"run {run_dir.name} has no distilled student",
            where=Location(file=str(source)),
            hint=f"the train stage writes it; finish the run with `still run --resume {run_dir.name}`",
        )
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise UserError(f"export folder {dest} exists and is not empty", hint="give a new or empty folder")
    return source


def _merge_adapter(source: Path, dest: Path, base: str, dtype: str) -> None:
    from peft import PeftModel

    from stillhouse.plugins.hf_models import load_causal_lm

    model, _ = load_causal_lm(base, dtype=dtype, device="cpu")
    try:
        merged = PeftModel.from_pretrained(model, str(source)).merge_and_unload()
    except (OSError, ValueError, RuntimeError) as exc:
        raise ModelError(
            f"cannot apply the LoRA adapter in {source} to {base}: {exc}",
            hint="the adapter must have been trained on this base model (student.model)",
        ) from None
    merged.save_pretrained(dest)


def export_student(run_dir: Path, dest: Path, *, merge_lora: bool | None = None) -> Path:
    """Copy (or merge) ``run_dir/student`` into ``dest`` with a tokenizer and README.md; return ``dest``."""
    from stillhouse.plugins.reports.content import load_report_input
    from stillhouse.plugins.reports.model_card import write_model_card

    run_dir, dest = Path(run_dir), Path(dest)
    source = _check_paths(run_dir, dest)
    student = _config(run_dir).get("student") or {}
    adapter_path = source / "adapter_config.json"
    adapter = json.loads(adapter_path.read_text()) if adapter_path.exists() else None
    base = str(student.get("model") or (adapter or {}).get("base_model_name_or_path") or "")
    merge = merge_lora if merge_lora is not None else bool((student.get("lora") or {}).get("merge", True))
    if adapter is not None and merge:
        if not base:
            raise UserError("the run's config names no student.model to merge the adapter into")
        dest.mkdir(parents=True, exist_ok=True)
        _merge_adapter(source, dest, base, str(student.get("dtype") or "auto"))
        for name in TOKENIZER_FILES + ("special_tokens_map.json", "chat_template.jinja"):
            if (source / name).exists():
                shutil.copy2(source / name, dest / name)
    else:
        shutil.copytree(source, dest, ignore=shutil.ignore_patterns(*TRAINING_STATE), dirs_exist_ok=True)
    if not any((dest / name).exists() for name in TOKENIZER_FILES):
        if not base:
            raise UserError(f"{source} has no tokenizer and the run's config names no student.model to take it from")
        from stillhouse.plugins.hf_models import load_tokenizer

        load_tokenizer(base, student.get("chat_template")).save_pretrained(dest)
    write_model_card(dest, load_report_input(run_dir))
    return dest
