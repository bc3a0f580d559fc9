"""Packing: rows of several samples compute exactly what each sample computes alone."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from stillhouse.kernel.interfaces import IGNORE_INDEX
from stillhouse.plugins.hf_models import load_causal_lm
from stillhouse.plugins.students.batching import Collator, pack_rows
from stillhouse.plugins.students.data import encode_pairs

from .helpers import math_pairs, nli_pairs


def test_pack_rows_respects_capacity_and_places_every_item_once() -> None:
    lengths = [50, 10, 70, 30, 90, 20, 60]
    rows = pack_rows(lengths, capacity=100)
    assert sorted(i for row in rows for i in row) == list(range(len(lengths)))
    assert all(sum(lengths[i] for i in row) <= 100 for row in rows)
    assert len(rows) == 4  # 340 tokens need at least 4 rows of 100
    assert pack_rows([150, 10], capacity=100) == [[0], [1]]  # too long: a row of its own


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_packed_sequence_has_no_cross_sample_leakage(tiny_model_dir: Path, attn: str) -> None:
    model, tok = load_causal_lm(str(tiny_model_dir), dtype="float32", device="cpu")
    model.set_attn_implementation(attn)
    samples, _ = encode_pairs(tok, nli_pairs(3), max_length=512)
    lengths = [len(s.input_ids) for s in samples]
    assert len(set(lengths)) == 3  # different lengths, so positions really differ
    batch = Collator(pad_id=tok.pad_token_id, max_length=1024, packing=True)([s.as_item() for s in samples])
    assert batch["input_ids"].shape == (1, sum(lengths)) and "attention_mask" not in batch
    with torch.no_grad():
        packed = model(input_ids=batch["input_ids"], position_ids=batch["position_ids"], use_cache=False).logits[0]
        cursor = 0
        for sample in samples:
            alone = model(input_ids=torch.tensor([sample.input_ids]), use_cache=False).logits[0]
            n = len(sample.input_ids)
            torch.testing.assert_close(packed[cursor : cursor + n], alone, atol=1e-5, rtol=1e-4)
            cursor += n
        # Control: the same row with continuous positions and a plain causal mask leaks, so the
        # comparison above can fail.
        leaky = model(input_ids=batch["input_ids"], use_cache=False).logits[0]
        second = slice(lengths[0], lengths[0] + lengths[1])
        assert not torch.allclose(leaky[second], packed[second], atol=1e-3)


def test_packed_targets_never_cross_a_sample_boundary(tiny_tokenizer_dir: Path) -> None:
    from stillhouse.plugins.hf_models import load_tokenizer

    tok = load_tokenizer(str(tiny_tokenizer_dir))
    samples, _ = encode_pairs(tok, nli_pairs(4), max_length=512)
    batch = Collator(pad_id=tok.pad_token_id, max_length=300, packing=True)([s.as_item() for s in samples])
    targets, positions = batch["target_ids"], batch["position_ids"]
    # The last position of every segment (before a position reset) predicts nothing.
    starts = positions == 0
    last_of_segment = torch.zeros_like(starts)
    last_of_segment[:, :-1] = starts[:, 1:]
    last_of_segment[:, -1] = True
    assert (targets[last_of_segment] == IGNORE_INDEX).all()
    assert int((targets != IGNORE_INDEX).sum()) == sum(s.n_targets for s in samples)
    assert int(batch["n_real"]) == sum(len(s.input_ids) for s in samples)


def test_packing_removes_most_padding_of_variable_length_batches(tiny_tokenizer_dir: Path) -> None:
    from stillhouse.plugins.hf_models import load_tokenizer

    tok = load_tokenizer(str(tiny_tokenizer_dir))
    samples, _ = encode_pairs(tok, math_pairs(8) + nli_pairs(8), max_length=512)
    items = [s.as_item() for s in samples]
    padded = Collator(pad_id=tok.pad_token_id, max_length=512, packing=False)(items)
    packed = Collator(pad_id=tok.pad_token_id, max_length=512, packing=True)(items)
    assert padded["attention_mask"].sum() == padded["n_real"] == packed["n_real"]
    waste_padded = 1 - padded["n_real"] / padded["n_positions"]
    waste_packed = 1 - packed["n_real"] / packed["n_positions"]
    assert waste_packed < waste_padded
    assert torch.equal((padded["target_ids"] != IGNORE_INDEX).sum(), (packed["target_ids"] != IGNORE_INDEX).sum())
