"""GGUF export: a tiny llama student written with the gguf package and read back by transformers'
own GGUF loader must give the source model's logits and tokenizer."""

from __future__ import annotations

import json

import pytest

from stillhouse.plugins.exporters.gguf_format import GgufExporter, check_supported, permute_rotary
from tests.plugins.reports.conftest import RUN_ID

TEXT = "Premise: A man plays 123 guitars on stage. <|end|> Hypothesis: music!"

# Tolerance on max |logit difference| as a fraction of the source logits' standard deviation.
# f16 rounds each weight to 11 significant bits (relative error <= 2^-11 ~ 0.05%); through two
# layers that stays well under 1% (measured 0.2%), while leaving q/k in HF's rotary layout gives
# 5%: the f16 case is the one that catches a layout error. q8_0 stores each block of 32 weights as
# int8 times the block's absmax/127, an error up to 0.4% of the block's largest weight per value;
# summed over a row it reaches a few percent of the logits' spread (measured 4.2% for this seeded
# model): 8% allows twice that, and a wrong scale or block order lands far above.
TOLERANCE = {"f16": 0.01, "q8_0": 0.08}


def _logits(model, tokenizer):
    import torch

    with torch.inference_mode():
        return model(**tokenizer(TEXT, return_tensors="pt")).logits[0]


@pytest.mark.parametrize("quantize", ["f16", "q8_0"])
def test_gguf_round_trips_through_transformers(still, student_run, tiny_model_dir, exports, quantize):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    dest = exports / "gguf"
    result = still("export", RUN_ID, str(dest), "--format", "gguf", "--quantize", quantize)
    assert result.exit_code == 0, result.output
    gguf_file = dest / f"model-{quantize}.gguf"
    assert gguf_file.exists() and (dest / "README.md").exists()
    assert sorted(p.name for p in dest.iterdir()) == ["README.md", gguf_file.name]
    assert f"llama-cli -m {gguf_file.name}" in (dest / "README.md").read_text()

    source_tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    tokenizer = AutoTokenizer.from_pretrained(dest, gguf_file=gguf_file.name)
    assert tokenizer(TEXT).input_ids == source_tok(TEXT).input_ids
    assert tokenizer.decode(tokenizer(TEXT).input_ids) == TEXT
    assert tokenizer.eos_token == "<|end|>" and tokenizer.pad_token == "<pad>"
    messages = [{"role": "user", "content": "hi"}]
    assert tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True) == (
        source_tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    )

    source = _logits(AutoModelForCausalLM.from_pretrained(tiny_model_dir), source_tok)
    loaded = _logits(AutoModelForCausalLM.from_pretrained(dest, gguf_file=gguf_file.name), tokenizer)
    error = (loaded - source).abs().max().item() / source.std().item()
    assert error < TOLERANCE[quantize], f"{quantize}: max logit error {error:.3f} of the logits' std"
    assert (loaded.argmax(-1) == source.argmax(-1)).float().mean().item() >= 0.9


def test_q8_0_is_smaller_than_f16(still, student_run, exports):
    sizes = {}
    for quantize in ("f16", "q8_0", "q4_0"):
        result = still("export", RUN_ID, str(exports / quantize), "--format", "gguf", "--quantize", quantize)
        assert result.exit_code == 0, result.output
        sizes[quantize] = (exports / quantize / f"model-{quantize}.gguf").stat().st_size
    # tiny rows: the metadata (vocab, merges) is a large share, so only the order is certain
    assert sizes["q4_0"] < sizes["q8_0"] < sizes["f16"]


def test_permutation_is_the_inverse_of_transformers_loader():
    import numpy as np
    from transformers.modeling_gguf_pytorch_utils import LlamaTensorProcessor

    weight = np.arange(8 * 16 * 3, dtype=np.float32).reshape(8 * 16, 3)
    permuted = permute_rotary(weight, heads=8)
    assert not np.array_equal(permuted, weight)
    restored = LlamaTensorProcessor()._reverse_permute_weights(permuted, 8, 8)
    assert np.array_equal(restored, weight)


def test_unsupported_architecture_names_the_supported_ones(still, stillhouse_home, student_run, exports):
    config = json.loads((student_run / "student" / "config.json").read_text())
    config["architectures"] = ["GPT2LMHeadModel"]
    (student_run / "student" / "config.json").write_text(json.dumps(config))
    dest = exports / "out"
    result = still("export", RUN_ID, str(dest), "--format", "gguf")
    assert result.exit_code == 2, result.output
    assert (
        "GPT2LMHeadModel" in result.output
        and "LlamaForCausalLM" in result.output
        and "Qwen2ForCausalLM" in result.output
    )
    assert not dest.exists() and list(exports.iterdir()) == []  # nothing partial left behind


def test_rope_scaling_is_refused():
    from stillhouse.kernel.errors import UserError

    config = {"architectures": ["LlamaForCausalLM"], "rope_parameters": {"rope_type": "llama3", "rope_theta": 5e5}}
    with pytest.raises(UserError, match="rope scaling"):
        check_supported(config)
    assert check_supported({"architectures": ["LlamaForCausalLM"], "rope_parameters": {"rope_type": "default"}})


def test_exporter_rejects_an_unknown_quantization():
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        GgufExporter.Config(quantize="q5_k")


def test_a_qwen2_student_round_trips(tiny_tokenizer_dir, exports):
    """Qwen2: q/k/v biases, and no q/k permutation (llama.cpp runs it with NeoX rotary)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(tiny_tokenizer_dir)
    torch.manual_seed(0)
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        tie_word_embeddings=False,
    )
    model = Qwen2ForCausalLM(config).eval()
    with torch.no_grad():  # biases start at zero; make them matter
        for layer in model.model.layers:
            for proj in (layer.self_attn.q_proj, layer.self_attn.k_proj, layer.self_attn.v_proj):
                proj.bias.normal_(std=0.5)
    source = exports / "qwen2-src"
    model.save_pretrained(source)
    tokenizer.save_pretrained(source)
    dest = exports / "qwen2-gguf"
    dest.mkdir()
    (path,) = GgufExporter(GgufExporter.Config(quantize="f16")).export(source, dest)
    loaded = AutoModelForCausalLM.from_pretrained(dest, gguf_file=path.name)
    assert not loaded.config.tie_word_embeddings
    expected, got = _logits(model, tokenizer), _logits(loaded, tokenizer)
    assert (got - expected).abs().max().item() / expected.std().item() < TOLERANCE["f16"]
