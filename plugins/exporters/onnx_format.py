"""``--format onnx``: the causal LM as an ONNX graph with a KV cache for onnxruntime, written by ``torch.onnx``.

Inputs ``input_ids`` (batch, sequence), ``attention_mask`` (batch, past + sequence) and, for each
layer ``i``, ``past_key_values.{i}.key`` / ``.value`` (batch, kv heads, past, head dim); outputs
``logits`` and ``present.{i}.key`` / ``.value`` (the cache after this step): optimum's names. A
generator runs the prompt once with an empty cache (past length 0), then one token a step with
the cache the previous step returned (``onnx_runtime.greedy_generate``). Position ids are derived
from the cache length, so one sequence at a time, or batches without padding, generate correctly.
``--quantize int8`` applies onnxruntime's dynamic int8 quantization to the weights of every MatMul;
``fp32`` (the default) keeps float32.

Every export is checked before it is kept: onnxruntime runs the graph on a prompt and its logits
are compared with torch's, and it generates ``CHECK_TOKENS`` greedy tokens through its cache,
compared with torch's ``generate``; ``onnx_check.json`` records the largest logit difference and
how many tokens agree. float32 must agree within ``FP32_ATOL`` (else the export fails); int8 is
lossy by design, so its difference is recorded, not enforced.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel

from stillhouse.kernel.errors import ModelError, UserError
from stillhouse.kernel.interfaces import Exporter, StrictModel

QUANTIZATIONS = ("fp32", "int8")
FP32_ATOL = 1e-3
"""Largest |logit difference| allowed between onnxruntime and torch for a float32 export: both
compute in float32, and kernels that sum in another order differ by about 1e-5 on small models."""
CHECK_PROMPT = "Summarize the conversation: #Person1#: Hello, how are you today? #Person2#: I am fine."
CHECK_TOKENS = 8
"""Greedy tokens generated through the cache on export, compared with torch's generate."""
EXAMPLE_PAST = 3
"""Past length of the example inputs torch.export traces with (0 and 1 would be specialised)."""
WEIGHT_FILES = ("*.safetensors", "*.safetensors.index.json", "*.bin", "*.bin.index.json")


class OnnxExportConfig(StrictModel):
    quantize: Literal["fp32", "int8"] = "fp32"


class OnnxExporter(Exporter[OnnxExportConfig]):
    name = "onnx"
    description = "ONNX graph with a KV cache for onnxruntime; --quantize fp32|int8 (dynamic)."
    Config: ClassVar[type[BaseModel]] = OnnxExportConfig
    quantizations = QUANTIZATIONS

    def export(self, source: Path, dest: Path) -> list[Path]:
        _require_runtime()
        import torch

        model, tokenizer = _load(source)
        enc = tokenizer(CHECK_PROMPT, return_tensors="pt")
        ids, mask = enc["input_ids"], enc["attention_mask"]
        graph = dest / "model.onnx"
        fp32 = graph if self.config.quantize == "fp32" else dest / "tmp-fp32" / "model.onnx"
        fp32.parent.mkdir(parents=True, exist_ok=True)
        export_graph(model, ids, fp32)
        if self.config.quantize == "int8":
            quantize_int8(fp32, graph)
            shutil.rmtree(fp32.parent)
        with torch.inference_mode():
            expected = model(input_ids=ids, attention_mask=mask).logits.float().numpy()
            generated = model.generate(
                input_ids=ids, attention_mask=mask, do_sample=False, max_new_tokens=CHECK_TOKENS, min_new_tokens=CHECK_TOKENS
            )[0, ids.shape[1] :].tolist()
        check = compare_logits(graph, ids.numpy(), mask.numpy(), expected)
        check.update(compare_generation(graph, ids[0].tolist(), generated))
        check.update(quantize=self.config.quantize, prompt=CHECK_PROMPT, kv_cache=True)
        if self.config.quantize == "fp32" and check["max_abs_diff"] > FP32_ATOL:
            raise ModelError(
                f"the ONNX graph's logits differ from torch's by {check['max_abs_diff']:.2e} (> {FP32_ATOL})",
                hint="the model uses an operation torch.onnx exports incorrectly; export as gguf or hf instead",
            )
        (dest / "onnx_check.json").write_text(json.dumps(check, indent=2) + "\n")
        # tokenizer, generation config, model config and card: everything but the torch weights
        shutil.copytree(source, dest, ignore=shutil.ignore_patterns(*WEIGHT_FILES), dirs_exist_ok=True)
        card = dest / "README.md"
        if card.exists():
            with card.open("a", encoding="utf-8") as out:
                out.write(_usage(self.config.quantize, check))
        return sorted(p for p in dest.rglob("*") if p.is_file())


def _require_runtime() -> None:
    import importlib.util

    missing = [m for m in ("onnx", "onnxruntime", "onnxscript") if importlib.util.find_spec(m) is None]
    if missing:
        raise UserError(
            f"--format onnx needs {', '.join(missing)}, which is not installed",
            hint="pip install 'stillhouse[export]'",
        )


def _load(source: Path) -> tuple[Any, Any]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        model = AutoModelForCausalLM.from_pretrained(source, dtype=torch.float32)
        tokenizer = AutoTokenizer.from_pretrained(source)
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot load the student in {source}: {exc}") from None
    model.eval()
    model.config.use_cache = False
    return model, tokenizer


def cache_shape(config: Any) -> tuple[int, int, int]:
    """(layers, key/value heads, head dim) of a decoder's KV cache."""
    heads = config.num_attention_heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    return config.num_hidden_layers, getattr(config, "num_key_value_heads", None) or heads, head_dim


def cache_names(layers: int, prefix: str) -> list[str]:
    return [f"{prefix}{i}.{part}" for i in range(layers) for part in ("key", "value")]


def _with_cache(model: Any) -> Any:
    """``forward(input_ids, attention_mask, *past) -> (logits, *present)`` around a causal LM: the
    flat past keys and values (layer by layer, key then value) become a DynamicCache, and the cache
    the model returns is flattened the same way."""
    import torch
    from transformers import DynamicCache

    layers = cache_shape(model.config)[0]

    class WithCache(torch.nn.Module):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: Any, attention_mask: Any, *past: Any) -> Any:
            cache = DynamicCache(config=self.inner.config)
            for i in range(layers):
                cache.update(past[2 * i], past[2 * i + 1], i)
            out = self.inner(input_ids=input_ids, attention_mask=attention_mask, past_key_values=cache, use_cache=True)
            present = [t for layer in out.past_key_values.layers[:layers] for t in (layer.keys, layer.values)]
            return (out.logits, *present)

    return WithCache(model).eval()


def export_graph(model: Any, ids: Any, path: Path) -> None:
    """torch.onnx's exporter (torch.export based) with batch, sequence and past length dynamic."""
    import torch

    from stillhouse.plugins.exporters.onnx_runtime import PAST, PRESENT

    layers, kv_heads, head_dim = cache_shape(model.config)
    past = tuple(torch.randn(ids.shape[0], kv_heads, EXAMPLE_PAST, head_dim) for _ in range(2 * layers))
    mask = torch.ones(ids.shape[0], EXAMPLE_PAST + ids.shape[1], dtype=torch.int64)
    batch, seq = torch.export.Dim("batch", max=1024), torch.export.Dim("sequence", max=8192)
    past_len, total = torch.export.Dim("past_sequence", max=8192), torch.export.Dim("total_sequence", max=16384)
    try:
        program = torch.onnx.export(
            _with_cache(model),
            (ids, mask, *past),
            input_names=["input_ids", "attention_mask", *cache_names(layers, PAST)],
            output_names=["logits", *cache_names(layers, PRESENT)],
            dynamic_shapes={
                "input_ids": {0: batch, 1: seq},
                "attention_mask": {0: batch, 1: total},
                "past": tuple({0: batch, 2: past_len} for _ in range(2 * layers)),
            },
            dynamo=True,
            external_data=False,
        )
    except Exception as exc:  # noqa: BLE001 - torch.export raises many kinds; the user needs the reason
        arch = ", ".join(getattr(model.config, "architectures", None) or [type(model).__name__])
        raise UserError(
            f"torch.onnx cannot export {arch}: {type(exc).__name__}: {str(exc).splitlines()[0][:300]}",
            hint="export as gguf or hf instead",
        ) from None
    assert program is not None
    program.save(str(path))


def quantize_int8(fp32: Path, int8: Path) -> None:
    """onnxruntime's dynamic int8 quantization of every MatMul's weights."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(fp32), str(int8), weight_type=QuantType.QInt8)


def compare_generation(graph: Path, prompt: list[int], expected: list[int]) -> dict[str, Any]:
    """onnxruntime's greedy tokens through the cache against ``expected`` (torch's): how many of
    the first tokens agree before the first difference."""
    import onnxruntime as ort

    from stillhouse.plugins.exporters.onnx_runtime import greedy_generate

    session = ort.InferenceSession(str(graph), providers=["CPUExecutionProvider"])
    got = greedy_generate(session, prompt, max_new_tokens=len(expected))
    agree = next((i for i, (a, b) in enumerate(zip(got, expected, strict=False)) if a != b), min(len(got), len(expected)))
    return {"greedy_tokens": len(expected), "greedy_tokens_agree": agree}


def compare_logits(graph: Path, ids: Any, mask: Any, expected: Any) -> dict[str, Any]:
    """Run ``graph`` in onnxruntime on the prompt (empty cache); its largest logit difference from
    ``expected`` and whether the greedy next token is the same."""
    import numpy as np
    import onnxruntime as ort

    from stillhouse.plugins.exporters.onnx_runtime import empty_cache

    session = ort.InferenceSession(str(graph), providers=["CPUExecutionProvider"])
    feed = {"input_ids": ids.astype(np.int64), "attention_mask": mask.astype(np.int64), **empty_cache(session, ids.shape[0])}
    logits = session.run(["logits"], feed)[0]
    return {
        "max_abs_diff": float(np.abs(logits - expected).max()),
        "next_token_agrees": bool(logits[0, -1].argmax() == expected[0, -1].argmax()),
        "positions": int(ids.shape[1]),
    }


def _usage(quantize: str, check: dict[str, Any]) -> str:
    return (
        f"\n## This ONNX graph ({quantize})\n\n"
        "`model.onnx` takes `input_ids`, `attention_mask` and the KV cache (`past_key_values.N.key` / "
        "`.value`, empty for the prompt) and returns `logits` and the new cache (`present.N.key` / "
        "`.value`), to feed back with the next token. Checked against torch on export: largest logit "
        f"difference {check['max_abs_diff']:.2e}; {check['greedy_tokens_agree']} of {check['greedy_tokens']} "
        "greedy tokens the same.\n\n"
        "```python\nimport onnxruntime as ort\nfrom transformers import AutoTokenizer\n"
        'session = ort.InferenceSession("model.onnx")\ntokenizer = AutoTokenizer.from_pretrained(".")\n'
        "from stillhouse.plugins.exporters.onnx_runtime import greedy_generate  # or your own loop\n"
        'ids = tokenizer("Hello")["input_ids"]\n'
        "print(tokenizer.decode(greedy_generate(session, ids, max_new_tokens=32)))\n```\n"
    )
