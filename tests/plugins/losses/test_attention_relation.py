"""``attention_relation``: the relation KL by hand, masking, hooks on real tiny models with different
head counts and widths, gradients only to the student, and bad maps refused before training."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from stillhouse.kernel.errors import ConfigError
from stillhouse.kernel.interfaces import LossInputs
from stillhouse.plugins.losses.attention import (
    AttentionRelation,
    causal_segments,
    default_heads,
    relation_kl,
)
from stillhouse.plugins.students.hf import HfStudentTrainer

from .conftest import LossJob


def test_relation_kl_by_hand() -> None:
    # One relation head, width 2. Query 0 sees only itself (KL 0). Query 1 sees keys 0, 1:
    # student scores (0, 1) / sqrt(2), teacher scores (1, 1) / sqrt(2) -> teacher (1/2, 1/2).
    student = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]], requires_grad=True)
    teacher = torch.tensor([[[1.0, 0.0], [1.0, 0.0]]], requires_grad=True)
    visible = causal_segments(torch.tensor([[0, 1]]))
    kl = relation_kl(student, teacher, 1, visible)
    z = 1 / math.sqrt(2)
    s = [1 / (1 + math.exp(z)), math.exp(z) / (1 + math.exp(z))]
    expected = 0.5 * (math.log(0.5) - math.log(s[0])) + 0.5 * (math.log(0.5) - math.log(s[1]))
    assert kl[0].tolist() == pytest.approx([0.0, expected])
    kl.sum().backward()
    assert teacher.grad is None and student.grad is not None and student.grad.abs().sum() > 0


def test_relation_heads_split_and_packed_samples() -> None:
    # Two relation heads of width 1: each head's KL by hand, averaged. Query 1 starts a new packed
    # sample (position id 0), so it sees only itself: KL 0 there whatever the values.
    student = torch.tensor([[[1.0, 2.0], [3.0, 0.0], [0.0, 1.0]]])
    teacher = torch.tensor([[[1.0, 0.0], [3.0, 2.0], [2.0, 1.0]]])
    visible = causal_segments(torch.tensor([[0, 0, 1]]))
    kl = relation_kl(student, teacher, 2, visible)[0]
    assert kl[0].item() == pytest.approx(0.0) and kl[1].item() == pytest.approx(0.0)

    def head_kl(s: list[float], t: list[float]) -> float:
        ps, pt = torch.softmax(torch.tensor(s, dtype=torch.float32), 0), torch.softmax(torch.tensor(t, dtype=torch.float32), 0)
        return float((pt * (pt / ps).log()).sum())

    # Query 2 sees keys 1, 2. Head 0: student 0*3, 0*0 -> (0, 0); teacher 2*3, 2*2 -> (6, 4).
    # Head 1: student 1*0, 1*1 -> (0, 1); teacher 1*2, 1*1 -> (2, 1).
    expected = (head_kl([0, 0], [6, 4]) + head_kl([0, 1], [2, 1])) / 2
    assert kl[2].item() == pytest.approx(expected, rel=1e-5)


def llama(hidden: int, heads: int, layers: int, seed: int) -> LlamaForCausalLM:
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=40,
        hidden_size=hidden,
        intermediate_size=hidden * 2,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=heads,
        max_position_embeddings=64,
    )
    return LlamaForCausalLM(config)


def qkv(model: LlamaForCausalLM, ids: torch.Tensor, block: int) -> list[torch.Tensor]:
    """Q, K, V of one block recomputed from the hidden states (independent of the loss's hooks)."""
    out = model(input_ids=ids, output_hidden_states=True)
    layer = model.model.layers[block]
    normed = layer.input_layernorm(out.hidden_states[block])
    return [proj(normed) for proj in (layer.self_attn.q_proj, layer.self_attn.k_proj, layer.self_attn.v_proj)]


def test_loss_through_hooks_on_models_with_different_head_counts() -> None:
    student, teacher = llama(16, 2, 2, 0), llama(24, 4, 3, 1)  # widths 16 vs 24, heads 2 vs 4
    loss = AttentionRelation(AttentionRelation.Config(alpha=1.0, layer_map={-1: 1}))
    loss.prepare_models(student, teacher)
    assert loss.pairs == [(1, 1)] and loss.heads == 2
    ids = torch.tensor([[3, 7, 9, 4, 5]])
    labels = torch.tensor([[-100, -100, 9, 4, -100]])
    teacher(input_ids=ids)  # the teacher forward first, as the trainer does; the hooks keep its Q/K/V
    value = loss(LossInputs(logits=student(input_ids=ids).logits, labels=labels))

    visible = causal_segments(torch.arange(5).unsqueeze(0))
    with torch.no_grad():
        terms = [
            relation_kl(s, t, 2, visible)
            for s, t in zip(qkv(student, ids, 1), qkv(teacher, ids, 1), strict=True)
        ]
    per_position = sum(terms) / 3
    expected = per_position[0, 2:4].sum() / 2  # only the two positions with labels
    assert value.item() == pytest.approx(expected.item(), rel=1e-4)
    value.backward()
    assert student.model.layers[1].self_attn.q_proj.weight.grad is not None
    assert all(p.grad is None for p in teacher.parameters())  # the teacher side is detached
    assert student.model.layers[1].self_attn.q_proj.weight.grad.abs().sum() > 0


def test_bad_maps_name_the_layers() -> None:
    student, teacher = llama(16, 2, 2, 0), llama(24, 4, 3, 1)
    with pytest.raises(ConfigError) as info:
        AttentionRelation(AttentionRelation.Config(layer_map={2: 0})).prepare_models(student, teacher)
    assert "student layer 2" in str(info.value) and "2 layers" in str(info.value)
    with pytest.raises(ConfigError) as info:
        AttentionRelation(AttentionRelation.Config(layer_map={0: -4})).prepare_models(student, teacher)
    assert "teacher layer -4" in str(info.value)
    with pytest.raises(ConfigError) as info:  # 16 and 24 cannot both be split into 5 heads
        AttentionRelation(AttentionRelation.Config(relation_heads=5)).prepare_models(student, teacher)
    assert "student layer 1" in str(info.value) and "teacher layer 2" in str(info.value)
    assert info.value.where.field == "train.loss_options.relation_heads"


def test_trainer_refuses_a_bad_map_before_training(make_loss_job: LossJob, tiny_teacher_dir: Path) -> None:
    job, events = make_loss_job(AttentionRelation(AttentionRelation.Config(layer_map={0: 9})), tiny_teacher_dir)
    with pytest.raises(ConfigError) as info:
        HfStudentTrainer(job.student).train(job)
    assert "teacher layer 9" in str(info.value)
    assert not events.of("metric", "train/loss")


@pytest.mark.slow
def test_trainer_trains_with_attention_relation(make_loss_job: LossJob, tiny_teacher_dir: Path) -> None:
    # Student: 2 layers, d=64, 4 heads; teacher: 4 layers, d=128, 4 heads (relation heads 4: 16 vs 32 wide).
    loss = AttentionRelation(AttentionRelation.Config(alpha=1.0, layer_map={0: 1, -1: -1}))
    job, events = make_loss_job(loss, tiny_teacher_dir, max_steps=5)
    HfStudentTrainer(job.student).train(job)
    losses = [e["value"] for e in events.of("metric", "train/loss")]
    assert loss.pairs == [(0, 1), (1, 3)]
    assert len(losses) == 5 and losses[-1] < losses[0]


def test_default_relation_heads_fit_grouped_query_attention() -> None:
    # SmolLM2-135M: 9 query heads of 64 (q 576) but 3 key/value heads (k, v 192): 9 does not divide 192.
    assert default_heads(9, [576, 192, 192, 576, 192, 192]) == 8
    assert default_heads(4, [64, 64, 64, 128, 128, 128]) == 4


def relation_loss_and_grads(checkpointing: bool, reentrant: bool = False) -> tuple[float, dict[str, torch.Tensor]]:
    student, teacher = llama(16, 2, 2, 0), llama(24, 4, 3, 1)
    student.config.use_cache = False
    student.train()  # transformers checkpoints blocks only in training mode; no dropout in this config
    if checkpointing:
        student.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": reentrant})
    # alpha = 1: every gradient comes from the relation term (none from cross-entropy)
    loss = AttentionRelation(AttentionRelation.Config(alpha=1.0, layer_map={0: 1, -1: -1}))
    loss.prepare_models(student, teacher)
    ids = torch.tensor([[3, 7, 9, 4, 5, 6]])
    labels = torch.tensor([[-100, 7, 9, 4, 5, -100]])
    with torch.no_grad():
        teacher(input_ids=ids)
    value = loss(LossInputs(logits=student(input_ids=ids, use_cache=False).logits, labels=labels))
    value.backward()
    return value.item(), {n: p.grad.clone() for n, p in student.named_parameters() if p.grad is not None}


def test_gradient_checkpointing_gives_the_same_loss_and_gradients() -> None:
    plain_value, plain = relation_loss_and_grads(False)
    value, grads = relation_loss_and_grads(True)
    assert value == pytest.approx(plain_value, rel=1e-6)
    assert grads.keys() == plain.keys() and "model.layers.0.self_attn.q_proj.weight" in grads
    for name, grad in plain.items():
        assert torch.allclose(grads[name], grad, atol=1e-6, rtol=1e-5), name
    # the relation term reaches the first block's projections through the recomputed blocks
    assert plain["model.layers.0.self_attn.k_proj.weight"].abs().sum() > 0


def test_reentrant_checkpointing_is_refused_rather_than_losing_the_relation_gradient() -> None:
    with pytest.raises(ValueError, match="use_reentrant"):
        relation_loss_and_grads(True, reentrant=True)
