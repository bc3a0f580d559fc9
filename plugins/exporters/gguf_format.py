"""``--format gguf``: a llama.cpp GGUF file written with the ``gguf`` package (llama.cpp's own
Python library: its tensor-name maps, writer and quantizers).

Supported: llama-family students (``LlamaForCausalLM``: SmolLM2, Llama 2/3 without rope scaling)
and ``Qwen2ForCausalLM``, with a byte-level BPE tokenizer. f16 keeps every matrix as float16;
q8_0 / q4_0 / q4_1 quantize each matrix whose rows split into whole 32-value blocks (the rest
stays f16). Norms and biases stay float32 in every type, as llama.cpp expects.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel

from stillhouse.kernel.errors import ModelError, UserError
from stillhouse.kernel.interfaces import Exporter, StrictModel
from stillhouse.plugins.exporters.gguf_vocab import GgufVocab, read_vocab

QUANTIZATIONS = ("f16", "q8_0", "q4_0", "q4_1")


@dataclass(frozen=True)
class Architecture:
    gguf_arch: str  # gguf.MODEL_ARCH member name
    permute_qk: bool  # llama.cpp's llama graph wants rotary pairs interleaved, HF's halves split


ARCHITECTURES = {
    "LlamaForCausalLM": Architecture("LLAMA", permute_qk=True),
    "Qwen2ForCausalLM": Architecture("QWEN2", permute_qk=False),  # llama.cpp runs qwen2 with NeoX rope: no permute
}


class GgufExportConfig(StrictModel):
    quantize: Literal["f16", "q8_0", "q4_0", "q4_1"] = "f16"


class GgufExporter(Exporter[GgufExportConfig]):
    name = "gguf"
    description = "llama.cpp GGUF file (f16, q8_0, q4_0, q4_1) for llama-family and Qwen2 students."
    Config: ClassVar[type[BaseModel]] = GgufExportConfig
    quantizations = QUANTIZATIONS

    def export(self, source: Path, dest: Path) -> list[Path]:
        quantize = self.config.quantize
        config = _model_config(source)
        arch = check_supported(config)
        vocab = read_vocab(source, int(config["vocab_size"]))
        path = dest / f"model-{quantize}.gguf"
        write_gguf(path, config, arch, vocab, _load_weights(source), quantize)
        if (source / "README.md").exists():
            shutil.copy2(source / "README.md", dest / "README.md")
            with (dest / "README.md").open("a", encoding="utf-8") as card:
                card.write(_gguf_usage(path.name, quantize))
        return sorted(p for p in dest.iterdir() if p.is_file())


def _gguf_usage(filename: str, quantize: str) -> str:
    # The card was written for the transformers folder; this file is loaded differently.
    return (
        f"\n## This GGUF file ({quantize})\n\n"
        f"`{filename}` holds the weights ({quantize}), the tokenizer and the chat template:\n\n"
        f"```bash\nllama-cli -m {filename} -cnv\n```\n\n"
        "or, dequantised by transformers: "
        f'`AutoModelForCausalLM.from_pretrained(folder, gguf_file="{filename}")`.\n'
    )


def _model_config(folder: Path) -> dict[str, Any]:
    path = folder / "config.json"
    if not path.exists():
        raise ModelError(f"{folder} has no config.json")
    return json.loads(path.read_text())


def check_supported(config: dict[str, Any]) -> Architecture:
    """The architecture entry for this model config; a UserError naming what is supported otherwise."""
    names = config.get("architectures") or ["?"]
    supported = ", ".join(ARCHITECTURES)
    arch = ARCHITECTURES.get(names[0])
    if arch is None:
        raise UserError(
            f"GGUF export does not support the architecture {names[0]}; supported: {supported}",
            hint="export with --format hf, which holds any transformers model",
        )
    rope = config.get("rope_parameters") or config.get("rope_scaling") or {}
    if rope.get("rope_type", rope.get("type", "default")) not in ("default", None):
        raise UserError(f"GGUF export does not support rope scaling ({rope.get('rope_type') or rope.get('type')}) yet")
    if arch.gguf_arch == "LLAMA" and (config.get("attention_bias") or config.get("mlp_bias")):
        raise UserError("GGUF export supports llama models without attention or MLP biases")
    return arch


def _load_weights(folder: Path) -> dict[str, Any]:
    """Every tensor of the folder as float32 numpy (bf16 has no numpy dtype, so through torch)."""
    import torch
    from safetensors import safe_open

    weights: dict[str, Any] = {}
    files = sorted(folder.glob("*.safetensors"))
    if files:
        for file in files:
            with safe_open(str(file), framework="pt") as handle:
                for key in handle.keys():  # noqa: SIM118 - safe_open is not a mapping
                    weights[key] = handle.get_tensor(key).to(torch.float32).numpy()
    else:
        for file in sorted(folder.glob("pytorch_model*.bin")):
            state = torch.load(file, map_location="cpu", weights_only=True)
            weights.update({k: v.to(torch.float32).numpy() for k, v in state.items()})
    if not weights:
        raise ModelError(f"{folder} has no weights (*.safetensors or pytorch_model*.bin)")
    return weights


def permute_rotary(weight: Any, heads: int) -> Any:
    """Reorder a q/k projection's rows from HF's split-halves rotary layout to llama.cpp's
    interleaved pairs (transformers' GGUF loader undoes exactly this for llama files)."""
    rows = weight.shape[0]
    return weight.reshape(heads, 2, rows // heads // 2, *weight.shape[1:]).swapaxes(1, 2).reshape(weight.shape)


def write_gguf(
    path: Path, config: dict[str, Any], arch: Architecture, vocab: GgufVocab, weights: dict[str, Any], quantize: str
) -> None:
    import gguf
    import numpy as np

    model_arch = getattr(gguf.MODEL_ARCH, arch.gguf_arch)
    arch_name = gguf.MODEL_ARCH_NAMES[model_arch]
    layers = int(config["num_hidden_layers"])
    heads = int(config["num_attention_heads"])
    kv_heads = int(config.get("num_key_value_heads") or heads)
    hidden = int(config["hidden_size"])
    head_dim = int(config.get("head_dim") or hidden // heads)
    rope = config.get("rope_parameters") or {}
    qtype = {
        "f16": gguf.GGMLQuantizationType.F16,
        "q8_0": gguf.GGMLQuantizationType.Q8_0,
        "q4_0": gguf.GGMLQuantizationType.Q4_0,
        "q4_1": gguf.GGMLQuantizationType.Q4_1,
    }[quantize]
    file_type = {
        "f16": gguf.LlamaFileType.MOSTLY_F16,
        "q8_0": gguf.LlamaFileType.MOSTLY_Q8_0,
        "q4_0": gguf.LlamaFileType.MOSTLY_Q4_0,
        "q4_1": gguf.LlamaFileType.MOSTLY_Q4_1,
    }[quantize]

    writer = gguf.GGUFWriter(str(path), arch_name)
    writer.add_name(str(config.get("_name_or_path") or path.stem))
    writer.add_context_length(int(config.get("max_position_embeddings") or 2048))
    writer.add_embedding_length(hidden)
    writer.add_block_count(layers)
    writer.add_feed_forward_length(int(config["intermediate_size"]))
    writer.add_head_count(heads)
    writer.add_head_count_kv(kv_heads)
    writer.add_rope_dimension_count(head_dim)
    writer.add_rope_freq_base(float(config.get("rope_theta") or rope.get("rope_theta") or 10000.0))
    writer.add_layer_norm_rms_eps(float(config.get("rms_norm_eps") or 1e-6))
    writer.add_vocab_size(len(vocab.tokens))
    writer.add_file_type(file_type)
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)

    writer.add_tokenizer_model("gpt2")  # llama.cpp's name for byte-level BPE
    writer.add_tokenizer_pre(vocab.pre)
    writer.add_token_list(vocab.tokens)
    writer.add_token_types(vocab.token_types)
    writer.add_token_merges(vocab.merges)
    adders = {
        "bos": writer.add_bos_token_id,
        "eos": writer.add_eos_token_id,
        "unk": writer.add_unk_token_id,
        "pad": writer.add_pad_token_id,
    }
    for key, token_id in vocab.special_ids.items():
        adders[key](token_id)
    writer.add_add_bos_token(vocab.add_bos)
    if vocab.chat_template:
        writer.add_chat_template(vocab.chat_template)

    names = gguf.get_tensor_name_map(model_arch, layers)
    block = gguf.GGML_QUANT_SIZES[qtype][0]
    tied = config.get("tie_word_embeddings", True)
    for hf_name, tensor in weights.items():
        if hf_name == "lm_head.weight" and tied:
            continue  # llama.cpp reuses token_embd for a tied output layer
        if hf_name.endswith("rotary_emb.inv_freq"):
            continue  # recomputed from rope.freq_base
        name = names.get_name(hf_name, try_suffixes=(".weight", ".bias"))
        if name is None:
            raise UserError(f"GGUF export cannot place the tensor {hf_name} of this {arch_name} model")
        if arch.permute_qk and hf_name.endswith("q_proj.weight"):
            tensor = permute_rotary(tensor, heads)
        elif arch.permute_qk and hf_name.endswith("k_proj.weight"):
            tensor = permute_rotary(tensor, kv_heads)
        if tensor.ndim == 1:
            writer.add_tensor(name, np.ascontiguousarray(tensor, dtype=np.float32))
        elif qtype != gguf.GGMLQuantizationType.F16 and tensor.shape[-1] % block == 0:
            data = gguf.quants.quantize(np.ascontiguousarray(tensor, dtype=np.float32), qtype)
            writer.add_tensor(name, data, raw_dtype=qtype)
        else:
            writer.add_tensor(name, np.ascontiguousarray(tensor, dtype=np.float16))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
