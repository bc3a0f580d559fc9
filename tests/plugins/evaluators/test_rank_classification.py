"""Rank classification: label log-likelihoods match a direct forward pass, and a model that rambles
but prefers the right label scores well ranked and poorly generated."""

from __future__ import annotations

from pathlib import Path

import pytest

from stillhouse.kernel.interfaces import EvalSubject, EvaluateConfig, Example
from stillhouse.plugins.evaluators.task_metrics import TaskMetricsEvaluator
from stillhouse.plugins.tasks import ClassificationTask
from stillhouse.plugins.tasks.classification import ClassificationConfig

LABELS = ["spam", "ham", "other"]
KEYS = {"alpha": "spam", "beta": "ham", "gamma": "other"}
RAMBLE = "Well, let me think about this question very carefully before I answer it properly."


def _chat_model(path: Path):  # type: ignore[no-untyped-def]
    from stillhouse.plugins.hf_models import load_causal_lm
    from stillhouse.plugins.students.chat_model import HfChatModel

    model, tokenizer = load_causal_lm(str(path), dtype="float32", device="cpu")
    return HfChatModel(model, tokenizer, name=path.name, disk_path=str(path))


def test_label_scores_match_a_direct_forward_pass(tiny_model_dir: Path) -> None:
    import torch

    chat = _chat_model(tiny_model_dir)
    prompts = [[{"role": "user", "content": "Is this spam? Win money now"}], [{"role": "user", "content": "Hi"}]]
    choices = ["spam", "ham", "contradiction"]  # different token counts: padding is exercised
    batched = chat.score_choices(prompts, choices, batch_size=4)
    tok, model = chat.tokenizer, chat.model
    for p, prompt in enumerate(prompts):
        prefix = tok.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
        prefix_ids = tok(prefix, add_special_tokens=False)["input_ids"]
        for c, choice in enumerate(choices):
            label_ids = tok(choice, add_special_tokens=False)["input_ids"]
            ids = torch.tensor([prefix_ids + label_ids])
            with torch.no_grad():
                logprobs = torch.log_softmax(model(input_ids=ids).logits[0].float(), dim=-1)
            expected = sum(float(logprobs[len(prefix_ids) + i - 1, t]) for i, t in enumerate(label_ids))
            assert batched[p][c] == pytest.approx(expected, abs=1e-4)
    assert len({round(s, 3) for s in batched[0]}) == 3  # genuinely different numbers per label
    # one prompt per pass (no left padding) gives the same numbers as the padded, cached batch
    single = chat.score_choices(prompts, choices, batch_size=1)
    assert [x for row in single for x in row] == pytest.approx([x for row in batched for x in row], abs=1e-4)


def test_the_cached_pass_equals_one_sequence_per_choice(tiny_model_dir: Path) -> None:
    """The KV-cache path (each prompt once, the choices on the repeated cache) against the plain path
    (every prompt + choice as its own row), on prompts of different lengths and choices of 1-3 tokens."""
    from stillhouse.plugins.hf_models import render_prompts
    from stillhouse.plugins.students.choices import _scores_plain, _scores_with_cache

    chat = _chat_model(tiny_model_dir)
    tok = chat.tokenizer
    messages = [[{"role": "user", "content": text}] for text in ("a b c d e f g h", "Hi", "one two three")]
    prefixes = [tok(t, add_special_tokens=False)["input_ids"] for t in render_prompts(tok, messages)]
    labels = [tok(c, add_special_tokens=False)["input_ids"] for c in ("yes", "no", "contradiction", "neutral")]
    assert len({len(p) for p in prefixes}) == 3 and len({len(label) for label in labels}) > 1
    cached = _scores_with_cache(chat.model, prefixes, labels, pad=0)
    assert cached is not None
    plain = _scores_plain(chat.model, prefixes, labels, pad=0, batch_size=5)
    assert [x for row in cached for x in row] == pytest.approx([x for row in plain for x in row], abs=1e-4)


def _examples() -> list[Example]:
    return [Example(f"{key}-{i}", "test", {"text": f"{key} {key} {key}"}, label) for i in range(2) for key, label in KEYS.items()]


@pytest.fixture(scope="module")
def rambler(tmp_path_factory: pytest.TempPathFactory, tiny_tokenizer_dir: Path):  # type: ignore[no-untyped-def]
    """A tiny model trained to answer every prompt with RAMBLE three times out of four and with the
    prompt's right label once: greedy generation rambles, yet the right label is the likelier one."""
    import torch

    from stillhouse.testing.tiny import build_tiny_model

    task = ClassificationTask(ClassificationConfig(labels=LABELS))
    chat = _chat_model(build_tiny_model(tmp_path_factory.mktemp("rambler"), layers=2, hidden=64, tokenizer_dir=tiny_tokenizer_dir))
    tok, model = chat.tokenizer, chat.model
    texts = []
    for ex in _examples()[:3]:
        prefix = tok.apply_chat_template(task.student_messages(ex), tokenize=False, add_generation_prompt=True)
        texts += [prefix + RAMBLE + "<|end|>"] * 3 + [prefix + ex.reference + "<|end|>"]
    enc = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False)
    labels = enc["input_ids"].masked_fill(enc["attention_mask"] == 0, -100)
    torch.manual_seed(0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(150):
        loss = model(**enc, labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    return task, chat


@pytest.mark.slow
def test_a_rambling_model_that_prefers_the_right_label_scores_well_ranked(rambler) -> None:  # type: ignore[no-untyped-def]
    task, chat = rambler
    examples = _examples()
    prompts = [task.student_messages(e) for e in examples]
    answers = chat.answer(prompts, max_new_tokens=12, batch_size=6)
    assert all(a.text.startswith("Well") for a in answers), [a.text for a in answers]
    parsed = [task.parse(a.text) for a in answers]
    info = {"batch_size": 4, "rank_choices": True}
    subject = EvalSubject("student", "rambler", chat, task, examples, answers, parsed, info)
    metrics = {m.name: m for m in TaskMetricsEvaluator().evaluate(subject)}
    assert metrics["accuracy"].value == 0.0 and metrics["accuracy"].unit == "free generation, parsed"
    assert metrics["accuracy_ranked"].value == 1.0 and metrics["accuracy_ranked"].n == len(examples)
    assert "rank classification" in metrics["accuracy_ranked"].unit
    # Constrained choice: the same model served with its label set answers with the label it prefers.
    chat.choices = LABELS
    try:
        chosen = chat.answer(prompts, max_new_tokens=12, batch_size=6)
    finally:
        chat.choices = None
    assert [a.text for a in chosen] == [e.reference for e in examples]


def test_ranking_is_skipped_where_it_cannot_be_done(tiny_model_dir: Path) -> None:
    task = ClassificationTask(ClassificationConfig(labels=LABELS))
    examples = _examples()[:2]
    chat = _chat_model(tiny_model_dir)
    answers = chat.answer([task.student_messages(e) for e in examples], max_new_tokens=2, batch_size=2)
    parsed = [task.parse(a.text) for a in answers]
    remote = EvalSubject("teacher", "api", chat, task, examples, answers, parsed, {"remote": True})
    off = EvalSubject("student", "s", chat, task, examples, answers, parsed, {"rank_choices": False})
    for subject, why in ((remote, "API models keep free generation"), (off, "rank_choices = false")):
        ranked = {m.name: m for m in TaskMetricsEvaluator().evaluate(subject)}["accuracy_ranked"]
        assert ranked.value is None and why in (ranked.reason or "")
    assert EvaluateConfig().rank_choices is True
