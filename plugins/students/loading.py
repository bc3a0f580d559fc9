"""Loading a student (a trained folder, a LoRA adapter folder, or the base model) for inference."""

from __future__ import annotations

from pathlib import Path

from stillhouse.plugins.students.chat_model import HfChatModel
from stillhouse.plugins.students.config import HfStudentConfig


def load_chat_model(config: HfStudentConfig, model_dir: Path | None) -> HfChatModel:
    from stillhouse.plugins.hf_models import load_causal_lm, load_tokenizer, resolve_device, resolve_dtype

    if model_dir is None:
        model, tokenizer = load_causal_lm(config.model, dtype=config.dtype, device=config.device)
        if config.chat_template:
            tokenizer.chat_template = config.chat_template
        if config.init == "teacher-layers":
            # The baseline is the student as training starts: the kept layers of student.model,
            # not the whole source model (which would be the teacher itself).
            from stillhouse.plugins.students.layers import build_from_layers

            device = next(model.parameters()).device
            model = build_from_layers(model, config.layers or [], config.model).to(device).eval()
            name = f"{config.model} (layers {','.join(map(str, config.layers or []))}, untrained)"
            return HfChatModel(model, tokenizer, name=name, disk_path=None)
        return HfChatModel(model, tokenizer, name=config.model, disk_path=config.model)
    model_dir = Path(model_dir)
    if (model_dir / "adapter_config.json").exists():
        # An unmerged LoRA export (lora.merge = false): base weights + adapter.
        from peft import AutoPeftModelForCausalLM

        device = resolve_device(config.device)
        model = AutoPeftModelForCausalLM.from_pretrained(str(model_dir), dtype=resolve_dtype(config.dtype, device))
        model.to(device).eval()
        tokenizer = load_tokenizer(str(model_dir))
    else:
        model, tokenizer = load_causal_lm(str(model_dir), dtype=config.dtype, device=config.device)
    return HfChatModel(model, tokenizer, name=str(model_dir), disk_path=str(model_dir))
