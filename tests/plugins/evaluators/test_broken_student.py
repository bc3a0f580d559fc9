"""A deliberately broken student (random weights) must score lower than a baseline that learned the
task's answer format, on a real fixture, through the real task, evaluation path and comparison."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

import stillhouse.plugins.evaluators as evaluators_plugin
from stillhouse.kernel.comparison import build_comparison
from stillhouse.kernel.data import load_split
from stillhouse.kernel.evaluation import evaluate_role
from stillhouse.kernel.interfaces import EvaluateConfig
from stillhouse.plugins.tasks.nli import NLITask
from tests.plugins.evaluators.helpers import TinyChatModel

FIXTURE = Path(__file__).parents[2] / "fixtures" / "data" / "nli.jsonl"
TRAIN_ROWS = 16  # the rest is held out: metrics never see a training row


def train_on_gold(model_dir: Path, out: Path, task: NLITask, examples, steps: int = 60) -> Path:
    """A few steps of plain torch next-token training on the gold labels (loss on the answer only)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from stillhouse.kernel.interfaces import Parsed
    from stillhouse.plugins.hf_models import render_prompts

    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    rows = []
    for example in examples:
        for pair in task.student_targets(example, Parsed(answer=example.reference)):
            prompt = tokenizer(render_prompts(tokenizer, [pair.messages])[0], add_special_tokens=False).input_ids
            target = tokenizer(pair.target + tokenizer.eos_token, add_special_tokens=False).input_ids
            rows.append((prompt + target, [-100] * len(prompt) + target))
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-3)
    rng = random.Random(0)
    model.train()
    for _ in range(steps):
        batch = rng.sample(rows, 8)
        width = max(len(ids) for ids, _ in batch)
        ids = torch.tensor([i + [tokenizer.pad_token_id] * (width - len(i)) for i, _ in batch])
        labels = torch.tensor([lab + [-100] * (width - len(lab)) for _, lab in batch])
        mask = torch.tensor([[1] * len(i) + [0] * (width - len(i)) for i, _ in batch])
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


@pytest.mark.slow
def test_random_weights_score_below_a_trained_baseline(tiny_model_dir, tmp_path, make_host):
    host = make_host(evaluators_plugin, entry_points=False)
    task = NLITask(NLITask.Config())
    examples = load_split(task, FIXTURE, "test").examples
    train, held_out = examples[:TRAIN_ROWS], examples[TRAIN_ROWS:]
    assert {e.reference for e in held_out} == {"entailment", "neutral", "contradiction"}
    baseline_dir = train_on_gold(tiny_model_dir, tmp_path / "baseline", task, train)

    config = EvaluateConfig(evaluators=["task_metrics", "throughput"], max_new_tokens=8, batch_size=4)
    results = {}
    for role, model_dir in (("baseline", baseline_dir), ("student", tiny_model_dir)):  # student = random weights
        model = TinyChatModel(model_dir)
        results[role] = evaluate_role(role, role, model, task, held_out, config, host, tmp_path / "eval")
        assert (tmp_path / "eval" / f"{role}.jsonl").exists()

    scores = {role: {m.name: m for m in metrics} for role, metrics in results.items()}
    baseline, broken = scores["baseline"]["accuracy"], scores["student"]["accuracy"]
    assert baseline.n == broken.n == len(held_out)
    assert baseline.value > broken.value
    delta = build_comparison(results, "accuracy").row("student_vs_baseline").cells["task"]
    assert delta.value == pytest.approx(broken.value - baseline.value) and delta.value < 0
