"""The teacher top-k store: equal to a direct teacher forward, compact, reused, placed at the right
positions; vocabulary mismatch and missing API log-probs fail before training."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from stillhouse.kernel.errors import ModelError
from stillhouse.kernel.interfaces import IGNORE_INDEX
from stillhouse.kernel.run_folder import RunFolder
from stillhouse.plugins.hf_models import load_causal_lm, load_tokenizer
from stillhouse.plugins.losses.divergences import ForwardKL
from stillhouse.plugins.students.api_logprobs import api_fill
from stillhouse.plugins.students.batching import Collator
from stillhouse.plugins.students.data import encode_pairs
from stillhouse.plugins.students.hf import HfStudentTrainer
from stillhouse.plugins.students.teacher_store import STORE_DIR, model_fill, open_store, write_store
from stillhouse.testing.tiny import build_tiny_model

from .conftest import JobFactory
from .helpers import nli_pairs

K = 8


def build(run_dir: Path, teacher_dir: Path, samples: list, k: int = K):
    teacher, tok = load_causal_lm(str(teacher_dir), dtype="float32", device="cpu")
    fill = model_fill(teacher, pad_id=tok.pad_token_id, k=k, vocab_size=len(tok), batch_tokens=400)
    return write_store(run_dir, samples, fill, teacher="hf/t", k=k, vocab_size=len(tok), source="model"), teacher


def test_store_matches_a_direct_teacher_forward_and_is_compact(tmp_path: Path, tiny_teacher_dir: Path) -> None:
    tok = load_tokenizer(str(tiny_teacher_dir))
    samples, _ = encode_pairs(tok, nli_pairs(6), max_length=512)
    store, teacher = build(tmp_path, tiny_teacher_dir, samples)
    assert store.meta.positions == sum(s.n_targets for s in samples)
    assert store.meta.id_dtype == "uint16" and store.meta.coverage == 1.0
    # 8 slots x (2-byte id + 2-byte log-prob) per target token, plus a small index.
    assert K * 4 <= store.bytes_per_token() < K * 4 + 20
    for sample in samples[:3]:  # packed with others while building; compared with the sample alone
        with torch.no_grad():
            logits = teacher(input_ids=torch.tensor([sample.input_ids])).logits[0]
        rows = [t for t, target in enumerate(sample.targets) if target != IGNORE_INDEX]
        expected_lp, expected_ids = torch.topk(torch.log_softmax(logits[rows].float(), -1), K)
        ids, lps = store.rows(store.offset(sample), sample.n_targets)
        np.testing.assert_array_equal(ids, expected_ids.numpy())
        np.testing.assert_allclose(lps.astype(np.float32), expected_lp.numpy(), atol=2e-2, rtol=1e-2)


def test_store_is_reused_only_when_it_covers_samples_teacher_and_k(tmp_path: Path, tiny_teacher_dir: Path) -> None:
    tok = load_tokenizer(str(tiny_teacher_dir))
    samples, _ = encode_pairs(tok, nli_pairs(4), max_length=512)
    build(tmp_path, tiny_teacher_dir, samples)
    assert open_store(tmp_path, samples, teacher="hf/t", k=K) is not None
    assert open_store(tmp_path, samples[:2], teacher="hf/t", k=K) is not None
    assert open_store(tmp_path, samples, teacher="hf/t", k=K + 1) is None
    assert open_store(tmp_path, samples, teacher="hf/other", k=K) is None
    more, _ = encode_pairs(tok, nli_pairs(5), max_length=512)
    assert open_store(tmp_path, more, teacher="hf/t", k=K) is None
    assert not (tmp_path / (STORE_DIR + ".partial")).exists()


def test_collator_places_store_rows_on_target_positions(tmp_path: Path, tiny_teacher_dir: Path) -> None:
    tok = load_tokenizer(str(tiny_teacher_dir))
    samples, _ = encode_pairs(tok, nli_pairs(3), max_length=512)
    store, _ = build(tmp_path, tiny_teacher_dir, samples)
    items = [{**s.as_item(), "topk_offset": store.offset(s)} for s in samples]
    batch = Collator(pad_id=tok.pad_token_id, max_length=1024, packing=True, store=store)(items)
    targets = batch["target_ids"][0]
    ids = batch["teacher_ids"][0]
    assert (ids[targets == IGNORE_INDEX] == -1).all()
    assert torch.isinf(batch["teacher_logprobs"][0][targets == IGNORE_INDEX]).all()
    cursor = 0
    for sample in samples:
        rows = cursor + np.flatnonzero(np.asarray(sample.targets) != IGNORE_INDEX)
        expected, _ = store.rows(store.offset(sample), sample.n_targets)
        np.testing.assert_array_equal(ids[rows].numpy(), expected)
        cursor += len(sample.input_ids)


def test_vocabulary_mismatch_is_reported_before_training(make_job: JobFactory, tmp_path: Path) -> None:
    other = build_tiny_model(tmp_path / "other-teacher", vocab_size=400, layers=1, hidden=32)
    job, _ = make_job(ForwardKL(), teacher=f"hf/{other}")
    with pytest.raises(ModelError) as info:
        HfStudentTrainer(job.student).train(job)
    err = info.value
    assert "forward_kl" in err.what and "do not share a tokenizer" in err.what
    assert 'train.loss = "sft"' in (err.hint or "")
    assert err.where is not None and err.where.field == "train.loss"
    assert not job.checkpoint_dir.exists() and not (job.run_dir / STORE_DIR).exists()


def test_training_with_two_local_teachers_reads_their_combined_top_k(
    make_job: JobFactory, tiny_teacher_dir: Path, tiny_model_dir: Path, tmp_path: Path
) -> None:
    from stillhouse.kernel.interfaces import NamedTeacher, TeacherConfig
    from stillhouse.plugins.students.ensemble_store import TEACHERS_DIR, ensemble_label

    job, events = make_job(ForwardKL(), max_steps=1, top_k=K)
    job.teachers = [
        NamedTeacher("big", 2.0, TeacherConfig(model=f"hf/{tiny_teacher_dir}")),
        NamedTeacher("small", 1.0, TeacherConfig(model=f"hf/{tiny_model_dir}")),
    ]
    outcome = HfStudentTrainer(job.student).train(job)
    topk = outcome.summary["teacher_topk"]
    assert topk["source"] == "ensemble" and topk["teachers"] == {"big": 2.0, "small": 1.0}
    assert json.loads((job.run_dir / STORE_DIR / "index.json").read_text())["teacher"] == ensemble_label(job.teachers)
    assert {p.name for p in (job.run_dir / TEACHERS_DIR).iterdir()} == {"big", "small"}
    assert any("combining the top-8 of 2 local teachers" in e["message"] for e in events.of("log"))
    # a local teacher with another vocabulary stops training before any step, as the primary one does
    other = build_tiny_model(tmp_path / "other-vocab", vocab_size=400, layers=1, hidden=32)
    job2, _ = make_job(ForwardKL(), run_dir=tmp_path / "run2", max_steps=1, top_k=K)
    job2.teachers = [job.teachers[0], NamedTeacher("odd", 1.0, TeacherConfig(model=f"hf/{other}"))]
    with pytest.raises(ModelError, match="do not share a tokenizer"):
        HfStudentTrainer(job2.student).train(job2)


def write_outputs(run_dir: Path, records: list[dict]) -> None:
    path = RunFolder(run_dir).teacher_outputs
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records))


def test_api_top_logprobs_are_mapped_onto_the_student_vocabulary(tmp_path: Path, tiny_tokenizer_dir: Path) -> None:
    tok = load_tokenizer(str(tiny_tokenizer_dir))
    pair = nli_pairs(1)[0]
    samples, _ = encode_pairs(tok, [pair], max_length=512)
    sample = samples[0]
    # A completion as an OpenAI-compatible API returns it: reasoning, then the target text, segmented
    # the way the student's tokenizer segments the target; alternatives as token text.
    answer_ids = [t for t in sample.targets if t != IGNORE_INDEX][:-1]  # without end-of-turn
    pieces = [tok.decode([i]) for i in answer_ids]
    prefix = "Let me think. "
    tokens = [{"token": prefix, "logprob": -0.5, "top": []}]
    for piece in pieces:
        tokens.append(
            {"token": piece, "logprob": -0.1, "top": [[piece, -0.1], [" the", -2.5], ["\u00e9\u00e9\u00e9zz", -3.0]]}
        )
    record = {
        "sample_id": pair.sample_id,
        "model": "openai/gpt-x",
        "completions": [{"text": prefix + "".join(pieces), "finish_reason": "stop", "logprobs": tokens}],
        "split": "train",
    }
    write_outputs(tmp_path, [record])
    fill = api_fill(tmp_path, tok, k=4, loss="forward_kl", teacher="openai/gpt-x")
    store = write_store(tmp_path, samples, fill, teacher="openai/gpt-x", k=4, vocab_size=len(tok), source="api")
    ids, lps = store.rows(store.offset(sample), sample.n_targets)
    # Every answer token got its own id first (log-prob -0.1); " the" maps to a student token;
    # the made-up string does not and is dropped; end-of-turn got no slot.
    the_id = tok.convert_tokens_to_ids("Ġthe")
    assert ids[: len(answer_ids), 0].tolist() == answer_ids
    second = [-1 if piece == " the" else the_id for piece in pieces]  # " the" itself: one option
    assert ids[: len(answer_ids), 1].tolist() == second
    assert (ids[: len(answer_ids), 2:] == -1).all()
    assert (ids[len(answer_ids) :] == -1).all()
    np.testing.assert_allclose(lps[0, :2].astype(np.float32), [-0.1, -2.5], atol=1e-3)
    assert store.meta.coverage == pytest.approx(len(answer_ids) / sample.n_targets)


def test_api_teacher_without_logprobs_says_what_to_do(tmp_path: Path, tiny_tokenizer_dir: Path) -> None:
    tok = load_tokenizer(str(tiny_tokenizer_dir))
    write_outputs(tmp_path, [{"sample_id": "a", "completions": [{"text": "x", "logprobs": None}]}])
    with pytest.raises(ModelError) as info:
        api_fill(tmp_path, tok, k=4, loss="tvd", teacher="openai/gpt-x")
    assert "top_logprobs" in (info.value.hint or "") and "sft" in (info.value.hint or "")
