"""``uld``: hand-computed values (bucket, renormalise, hybrid), masking, gradients, the same-prefix
character alignment, and cross-tokenizer KD between two tiny models with different tokenizers."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM

from stillhouse.kernel.errors import ModelError
from stillhouse.kernel.interfaces import Completion, LossInputs, TeacherConfig, TeacherResult, TokenLogprob
from stillhouse.kernel.run_folder import RunFolder
from stillhouse.plugins.hf_models import load_tokenizer
from stillhouse.plugins.losses.divergences import ForwardKL
from stillhouse.plugins.losses.uld import UniversalLogitDistillation as Uld
from stillhouse.plugins.students.cross_tokenizer import TeacherTokens, align_prefix, from_completion
from stillhouse.plugins.students.data import TokenizedSample, encode_pairs
from stillhouse.plugins.students.hf import HfStudentTrainer
from stillhouse.plugins.students.teacher_store import open_store
from stillhouse.testing.tiny import build_tiny_model
from tests.plugins.students.helpers import batch_loss

from .conftest import LossJob

LOG = math.log
STUDENT = [0.5, 0.2, 0.2, 0.1]  # softmax of log(STUDENT)
NEG = float("-inf")


def inputs(teacher_lps: list[list[float]], teacher_ids: list[list[int]] | None = None) -> LossInputs:
    """Three positions: 0 and 2 are targets with the given teacher rows, 1 is masked (-100)."""
    logits = torch.log(torch.tensor([STUDENT, [0.25] * 4, STUDENT])).unsqueeze(0).requires_grad_(True)
    lps = torch.tensor([teacher_lps]).requires_grad_(True)
    ids = torch.tensor([teacher_ids]) if teacher_ids is not None else torch.full(lps.shape, -1)
    return LossInputs(logits=logits, labels=torch.tensor([[0, -100, 0]]), teacher_ids=ids, teacher_logprobs=lps)


def test_bucket_distance_by_hand_with_masking_and_gradients() -> None:
    # Position 0: teacher top-2 (0.6, 0.3), student top-2 (0.5, 0.2): |0.1| + |0.1| + tails |0.1 - 0.3| = 0.4.
    # Position 1 is masked (its garbage teacher row must not count); position 2 has no teacher slot.
    batch = inputs([[LOG(0.6), LOG(0.3)], [0.0, 0.0], [NEG, NEG]])
    loss = Uld(Uld.Config(alpha=1.0))(batch)
    assert loss.item() == pytest.approx(0.4 / 2)  # divided by the 2 target tokens
    loss.backward()
    assert batch.teacher_logprobs.grad is None  # the teacher side is detached
    assert batch.logits.grad[0, 0].abs().sum() > 0
    assert batch.logits.grad[0, 1].abs().sum() == 0  # masked position
    assert batch.logits.grad[0, 2].abs().sum() == 0  # no teacher slot, alpha = 1: nothing to learn


def test_renormalised_distance_and_the_cross_entropy_mix() -> None:
    # Teacher (2/3, 1/3) vs student top-2 renormalised (5/7, 2/7): 1/21 + 1/21.
    batch = inputs([[LOG(0.6), LOG(0.3)], [0.0, 0.0], [NEG, NEG]])
    assert Uld(Uld.Config(alpha=1.0, tail="renormalise"))(batch).item() == pytest.approx(2 / 21 / 2)
    # alpha = 0.5: half cross-entropy on label 0 (-log 0.5 at both targets) + half ULD.
    mixed = Uld(Uld.Config(alpha=0.5))(batch).item()
    assert mixed == pytest.approx(0.5 * -math.log(0.5) + 0.5 * 0.2)


def test_identical_sorted_vectors_cost_nothing_whatever_the_ids() -> None:
    # ULD ignores token identity: the student's probabilities in another order are a perfect match.
    batch = inputs([[LOG(0.5), LOG(0.2), LOG(0.2), LOG(0.1)], [0.0] * 4, [LOG(0.1), LOG(0.2), LOG(0.5), LOG(0.2)]])
    assert Uld(Uld.Config(alpha=1.0))(batch).item() == pytest.approx(0.0, abs=1e-6)


def test_hybrid_by_hand() -> None:
    # Teacher: id 0 p=0.5 and id 1 p=0.2 are student tokens, a foreign token p=0.1.
    # Matched part: teacher (5/7, 2/7) vs student ids 0, 1 renormalised (5/7, 2/7): KL = 0.
    # Rest: teacher (0.1, 0, 0) vs student outside ids 0, 1 sorted (0.2, 0.1, 0): 0.1 + 0.1;
    # tails: teacher 1 - 0.8 = 0.2, student 1 - 0.7 - 0.3 = 0: 0.2. Total 0.4 at position 0.
    row = [LOG(0.5), LOG(0.2), LOG(0.1)]
    batch = inputs([row, [0.0] * 3, [NEG] * 3], [[0, 1, -1], [0, 0, 0], [-1, -1, -1]])
    assert Uld(Uld.Config(alpha=1.0, hybrid=True))(batch).item() == pytest.approx(0.4 / 2)
    # Moving student mass between the matched ids shows up in the KL part.
    skewed = inputs([row, [0.0] * 3, [NEG] * 3], [[1, 0, -1], [0, 0, 0], [-1, -1, -1]])
    p, q = torch.tensor([5 / 7, 2 / 7]), torch.tensor([2 / 7, 5 / 7])
    kl = float((p * (p / q).log()).sum())
    assert Uld(Uld.Config(alpha=1.0, hybrid=True))(skewed).item() == pytest.approx((kl + 0.4) / 2)


def test_foreign_slots_are_invisible_to_the_same_vocabulary_losses() -> None:
    # A cross-tokenizer store row: id -1 with a finite log-prob. forward_kl must ignore it.
    batch = inputs([[LOG(0.6), LOG(0.3)], [0.0, 0.0], [NEG, NEG]])
    assert ForwardKL(ForwardKL.Config(alpha=1.0))(batch).item() == 0.0


def sample(answer: str, target: str, n: int) -> TokenizedSample:
    return TokenizedSample(input_ids=[0] * n, targets=[1] * n, target_text=target, answer_text=answer)


def test_same_prefix_alignment() -> None:
    # Student: "Hello" " world" "<|end|>"; teacher: "Hel" "lo" " world" (another segmentation).
    completion = Completion(
        "Hello world",
        logprobs=[
            TokenLogprob("Hel", -0.1, [("He", -2.5)]),
            TokenLogprob("lo", -0.2, []),
            TokenLogprob(" world", -0.3, [(" World", -1.5)]),
        ],
    )
    teacher = from_completion(completion)
    assert teacher is not None and teacher.spans == [(0, 3), (3, 5), (5, 11)]
    table = {" world": 7, "He": 3}
    offsets = [(0, 5), (5, 11), (11, 18)]
    ids, lps = align_prefix(sample("Hello world<|end|>", "Hello world", 3), offsets, teacher, table, 3)
    # Row 0 ("Hello", prefix "") takes the teacher token that starts at 0: "Hel" and its alternative.
    assert ids[0].tolist() == [-1, 3, -1] and lps[0][:2] == pytest.approx([-0.1, -2.5])
    # Row 1 (" world", prefix "Hello") takes " world"; the teacher's "lo" (inside "Hello") is dropped.
    assert ids[1].tolist() == [7, -1, -1] and lps[1][:2] == pytest.approx([-0.3, -1.5])
    # Row 2 is the end-of-turn token, outside the answer text: no slot.
    assert np.isneginf(lps[2]).all()

    # A teacher token spanning two student tokens: only the first student token gets it.
    wide = TeacherTokens("Hello world", [(0, 7), (7, 11)], [[("Hello w", -0.4)], [("orld", -0.5)]])
    ids, lps = align_prefix(sample("Hello world<|end|>", "Hello world", 3), offsets, wide, {}, 2)
    assert lps[0][0] == pytest.approx(-0.4) and np.isneginf(lps[1]).all()
    # The target not found in the teacher's text: no alignment at all.
    assert align_prefix(sample("Bye<|end|>", "Bye", 2), [(0, 3), (3, 10)], wide, {}, 2) is None


@pytest.fixture(scope="module")
def foreign_teacher_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny teacher whose BPE tokenizer has another vocabulary (size and merges) than the student's."""
    corpus = ["entailment contradiction neutral premise hypothesis answer " * 3, "a b c d e f g h i j k"]
    return build_tiny_model(tmp_path_factory.mktemp("foreign-teacher"), vocab_size=300, corpus=corpus, seed=3)


def test_cross_tokenizer_kd_trains_and_lowers_the_uld_loss(
    make_loss_job: LossJob, tiny_model_dir: Path, foreign_teacher_dir: Path
) -> None:
    student_tok, teacher_tok = load_tokenizer(str(tiny_model_dir)), load_tokenizer(str(foreign_teacher_dir))
    assert student_tok.get_vocab() != teacher_tok.get_vocab()
    # The same-vocabulary losses refuse this teacher, and point at uld.
    job, _ = make_loss_job(ForwardKL(), foreign_teacher_dir, name="kl")
    with pytest.raises(ModelError) as info:
        HfStudentTrainer(job.student).train(job)
    assert "uld" in (info.value.hint or "")

    loss = Uld(Uld.Config(alpha=1.0))
    job, events = make_loss_job(loss, foreign_teacher_dir, num_epochs=4, top_k=8)
    outcome = HfStudentTrainer(job.student).train(job)
    topk = outcome.summary["teacher_topk"]
    assert topk["source"] == "cross" and 0.3 < topk["coverage"] <= 1.0
    samples, _ = encode_pairs(student_tok, job.train, 256)
    store = open_store(job.run_dir, samples, teacher=f"{job.teacher.model} (cross-tokenizer)", k=8)
    assert store is not None
    before = batch_loss(AutoModelForCausalLM.from_pretrained(tiny_model_dir), samples, loss, store)
    after = batch_loss(AutoModelForCausalLM.from_pretrained(outcome.model_dir), samples, loss, store)
    assert after < 0.7 * before
    assert len(events.of("metric", "train/loss")) == outcome.steps


def test_uld_from_stored_api_top_logprobs(make_loss_job: LossJob) -> None:
    # An API teacher of another family: its tokens are whole words with a leading space (no student
    # tokenizer cuts them that way), stored with top_logprobs as the generate stage stores them.
    job, _ = make_loss_job(Uld(Uld.Config(alpha=0.5)), Path("unused"), max_steps=2, top_k=4)
    job.teacher = TeacherConfig(model="openai/other-family")
    folder = RunFolder(job.run_dir)
    folder.root.mkdir(parents=True, exist_ok=True)
    for pair in job.train:
        pieces = re.findall(r"\s*\S+", pair.target)
        tokens = [TokenLogprob(p, -0.2, [(p.upper(), -2.0), ("zz", -3.0)]) for p in pieces]
        result = TeacherResult(pair.sample_id, "openai/other-family", [Completion(pair.target, "stop", tokens)])
        folder.append_teacher_result(result, "train")
    outcome = HfStudentTrainer(job.student).train(job)
    topk = outcome.summary["teacher_topk"]
    # Every word-initial student token gets the teacher's word distribution; tokens inside a word do not.
    assert topk["source"] == "cross" and 0.1 < topk["coverage"] < 1.0
    assert outcome.steps == 2


def test_trimmed_offsets_align_by_the_previous_token_end() -> None:
    # Some tokenizers report " world" as 6..11 (space trimmed): the prefix still ends at 5.
    teacher = TeacherTokens("Hello world", [(0, 5), (5, 11)], [[("Hello", -0.1)], [(" world", -0.3)]])
    ids, lps = align_prefix(sample("Hello world<|end|>", "Hello world", 3), [(0, 5), (6, 11), (11, 18)], teacher, {}, 1)
    assert lps[:, 0].tolist()[:2] == pytest.approx([-0.1, -0.3]) and np.isneginf(lps[2]).all()


def test_batched_local_teacher_pass_equals_one_sample_at_a_time(foreign_teacher_dir: Path) -> None:
    from stillhouse.kernel.interfaces import TrainPair
    from stillhouse.plugins.students.cross_tokenizer import model_teacher_tokens

    model = AutoModelForCausalLM.from_pretrained(foreign_teacher_dir).eval()
    tokenizer = load_tokenizer(str(foreign_teacher_dir))
    pairs = [
        TrainPair(f"s{i}", [{"role": "user", "content": prompt}], target)
        for i, (prompt, target) in enumerate(
            [("premise a", "entailment"), ("a much longer premise and hypothesis here", "neutral answer b c"),
             ("b", "contradiction premise hypothesis"), ("c d e", "a")]
        )
    ]
    one_by_one = model_teacher_tokens(model, tokenizer, pairs, k=5, batch_tokens=1)  # a batch per sample
    batched = model_teacher_tokens(model, tokenizer, pairs, k=5, batch_tokens=4096)  # one padded batch
    assert len(batched) == len(one_by_one) == 4
    for single, batch in zip(one_by_one, batched, strict=True):
        assert (batch.text, batch.spans) == (single.text, single.spans) and len(batch.options) == len(single.options)
        for row_single, row_batch in zip(single.options, batch.options, strict=True):
            assert [t for t, _ in row_batch] == [t for t, _ in row_single]
            assert [v for _, v in row_batch] == pytest.approx([v for _, v in row_single], abs=1e-4)
