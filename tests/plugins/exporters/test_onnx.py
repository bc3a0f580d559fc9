"""`still export --format onnx`: a torch.onnx graph with a KV cache that onnxruntime runs with
torch's logits, float32 or dynamic int8, and generates with through its cache."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.plugins.reports.conftest import RUN_ID

pytest.importorskip("onnxruntime")

PROMPTS = ["Hello, how are you?", "Premise: two dogs run in a field. Hypothesis: the animals sleep."]


def torch_logits(model_dir, enc):
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    with torch.inference_mode():
        out = model(input_ids=torch.tensor(enc["input_ids"]), attention_mask=torch.tensor(enc["attention_mask"]))
    return out.logits.numpy()


def onnx_logits(graph, enc):
    import onnxruntime as ort

    from stillhouse.plugins.exporters.onnx_runtime import empty_cache

    session = ort.InferenceSession(str(graph), providers=["CPUExecutionProvider"])
    feed = {k: np.asarray(enc[k], dtype=np.int64) for k in ("input_ids", "attention_mask")}
    return session.run(["logits"], {**feed, **empty_cache(session, len(enc["input_ids"]))})[0]


@pytest.mark.slow  # two exports through torch.export, about 20 s each on two busy cores
def test_onnx_export_runs_in_onnxruntime_with_torchs_logits_and_int8_is_smaller(still, student_run, exports, tiny_model_dir):
    from transformers import AutoTokenizer

    dest = exports / "onnx"
    result = still("export", RUN_ID, str(dest), "--format", "onnx")
    assert result.exit_code == 0, result.output
    assert {"model.onnx", "tokenizer.json", "config.json", "onnx_check.json", "README.md"} <= {p.name for p in dest.iterdir()}
    assert not list(dest.glob("*.safetensors"))
    check = json.loads((dest / "onnx_check.json").read_text())
    assert check["max_abs_diff"] < 1e-3 and check["next_token_agrees"] and check["kv_cache"] is True
    assert check["greedy_tokens_agree"] == check["greedy_tokens"] == 8

    # a batch of two prompts of different lengths, left-padded: batch and sequence are dynamic
    tokenizer = AutoTokenizer.from_pretrained(dest)
    tokenizer.padding_side = "left"
    enc = tokenizer(PROMPTS, padding=True, return_tensors="np")
    expected, got = torch_logits(tiny_model_dir, enc), onnx_logits(dest / "model.onnx", enc)
    assert got.shape == expected.shape
    real = enc["attention_mask"].astype(bool)  # padded positions' logits are meaningless
    np.testing.assert_allclose(got[real], expected[real], atol=1e-3)
    assert "onnxruntime" in (dest / "README.md").read_text()

    int8 = exports / "int8"
    result = still("export", RUN_ID, str(int8), "--format", "onnx", "--quantize", "int8")
    assert result.exit_code == 0, result.output
    assert (int8 / "model.onnx").stat().st_size < 0.7 * (dest / "model.onnx").stat().st_size
    check = json.loads((int8 / "onnx_check.json").read_text())
    assert check["quantize"] == "int8" and check["max_abs_diff"] > 0  # lossy, and measured
    assert onnx_logits(int8 / "model.onnx", enc).shape == expected.shape


def test_onnx_refuses_a_gguf_quantization(still, student_run, exports):
    result = still("export", RUN_ID, str(exports / "out"), "--format", "onnx", "--quantize", "q8_0")
    assert result.exit_code == 2
    assert "--quantize 'q8_0'" in result.output and not (exports / "out").exists()
