"""``--format onnx``: the causal LM as an ONNX graph for onnxruntime, written by ``torch.onnx``.

The graph takes ``input_ids`` and ``attention_mask`` (batch and sequence dynamic) and returns the
``logits`` of every position. It has no KV cache: each generated token recomputes the whole
sequence, which is simple and portable (any onnxruntime build runs it) but slower for long replies
than a cache-carrying export would be. ``--quantize int8`` applies onnxruntime's dynamic int8
quantization to the weights of every MatMul; ``fp32`` (the default) keeps float32.

Every export is checked before it is kept: onnxruntime runs the graph on a prompt and its logits
are compared with torch's; ``onnx_check.json`` records the largest difference and whether the
greedy next token agrees. float32 must agree within ``FP32_ATOL`` (else the export fails); int8 is
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
WEIGHT_FILES = ("*.safetensors", "*.safetensors.index.json", "*.bin", "*.bin.index.json")


class OnnxExportConfig(StrictModel):
    quantize: Literal["fp32", "int8"] = "fp32"


class OnnxExporter(Exporter[OnnxExportConfig]):
    name = "onnx"
    description = "ONNX graph (logits, no KV cache) for onnxruntime; --quantize fp32|int8 (dynamic)."
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
        export_graph(model, ids, mask, fp32)
        if self.config.quantize == "int8":
            from onnxruntime.quantization import QuantType, quantize_dynamic

            quantize_dynamic(str(fp32), str(graph), weight_type=QuantType.QInt8)
            shutil.rmtree(fp32.parent)
        with torch.inference_mode():
            expected = model(input_ids=ids, attention_mask=mask).logits.float().numpy()
        check = compare_logits(graph, ids.numpy(), mask.numpy(), expected)
        check.update(quantize=self.config.quantize, prompt=CHECK_PROMPT, kv_cache=False)
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


def _logits_only(model: Any) -> Any:
    """``forward(input_ids, attention_mask) -> logits`` around a causal LM, without a cache."""
    import torch

    class LogitsOnly(torch.nn.Module):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: Any, attention_mask: Any) -> Any:
            return self.inner(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).logits

    return LogitsOnly(model).eval()


def export_graph(model: Any, ids: Any, mask: Any, path: Path) -> None:
    """torch.onnx's exporter (torch.export based) with batch and sequence dynamic."""
    import torch

    batch, seq = torch.export.Dim("batch", max=1024), torch.export.Dim("sequence", max=8192)
    try:
        program = torch.onnx.export(
            _logits_only(model),
            (ids, mask),
            input_names=["input_ids", "attention_mask"],
            output_names=["logits"],
            dynamic_shapes={"input_ids": {0: batch, 1: seq}, "attention_mask": {0: batch, 1: seq}},
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


def compare_logits(graph: Path, ids: Any, mask: Any, expected: Any) -> dict[str, Any]:
    """Run ``graph`` in onnxruntime; its largest logit difference from ``expected`` and whether
    the greedy next token is the same."""
    import numpy as np
    import onnxruntime as ort

    session = ort.InferenceSession(str(graph), providers=["CPUExecutionProvider"])
    [logits] = session.run(["logits"], {"input_ids": ids.astype(np.int64), "attention_mask": mask.astype(np.int64)})
    return {
        "max_abs_diff": float(np.abs(logits - expected).max()),
        "next_token_agrees": bool(logits[0, -1].argmax() == expected[0, -1].argmax()),
        "positions": int(ids.shape[1]),
    }


def _usage(quantize: str, check: dict[str, Any]) -> str:
    return (
        f"\n## This ONNX graph ({quantize})\n\n"
        "`model.onnx` takes `input_ids` and `attention_mask` and returns `logits` for every position "
        "(no KV cache: generation recomputes the sequence each step). Checked against torch on export: "
        f"largest logit difference {check['max_abs_diff']:.2e}.\n\n"
        "```python\nimport onnxruntime as ort\nfrom transformers import AutoTokenizer\n"
        'session = ort.InferenceSession("model.onnx")\ntokenizer = AutoTokenizer.from_pretrained(".")\n'
        'enc = tokenizer("Hello", return_tensors="np")\n'
        'logits = session.run(["logits"], {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]})[0]\n```\n'
    )
