"""Logit distillation from several teachers: their stored top-k log-probs become one distribution per
target position (weighted average of probabilities, renormalised over the top k)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from stillhouse.kernel.interfaces import IGNORE_INDEX
from stillhouse.kernel.run_folder import RunFolder
from stillhouse.plugins.hf_models import load_tokenizer
from stillhouse.plugins.students.api_logprobs import api_fill
from stillhouse.plugins.students.data import encode_pairs
from stillhouse.plugins.students.ensemble_topk import combine_topk
from stillhouse.plugins.students.teacher_store import write_store
from tests.plugins.students.helpers import nli_pairs


def test_combine_topk_averages_probabilities_by_weight_and_renormalises():
    a = (np.array([[5, 7, -1], [-1, -1, -1]]), np.array([[math.log(0.6), math.log(0.4), -np.inf], [-np.inf] * 3]))
    b = (np.array([[7, 9, -1], [3, -1, -1]]), np.array([[math.log(0.5), math.log(0.5), -np.inf], [0.0, -np.inf, -np.inf]]))
    ids, lps = combine_topk([(1.0, a), (3.0, b)], k=2)
    # row 0: token 5: 1*0.6 = 0.6; token 7: 1*0.4 + 3*0.5 = 1.9; token 9: 3*0.5 = 1.5 -> top 2: 7, 9
    assert ids[0].tolist() == [7, 9]
    np.testing.assert_allclose(np.exp(lps[0]), [1.9 / 3.4, 1.5 / 3.4], rtol=1e-5)
    # row 1: only b has a distribution there: it is b's, whatever a's weight
    assert ids[1].tolist() == [3, -1] and lps[1, 0] == pytest.approx(0.0)


def test_api_fill_combines_the_teachers_whose_answer_is_the_target(tmp_path: Path, tiny_tokenizer_dir: Path) -> None:
    tok = load_tokenizer(str(tiny_tokenizer_dir))
    pair = nli_pairs(1)[0]
    samples, _ = encode_pairs(tok, [pair], max_length=512)
    sample = samples[0]
    answer_ids = [t for t in sample.targets if t != IGNORE_INDEX][:-1]
    pieces = [tok.decode([i]) for i in answer_ids]
    the_id = tok.convert_tokens_to_ids("Ġthe")

    def completion(second: float, first: float, text: str | None = None) -> dict:
        tokens = [{"token": "Reasoning. ", "logprob": -0.5, "top": []}]
        tokens += [{"token": p, "logprob": first, "top": [[p, first], [" the", second]]} for p in pieces]
        return {"text": text or "Reasoning. " + "".join(pieces), "finish_reason": "stop", "logprobs": tokens}

    records = [
        {"sample_id": pair.sample_id, "model": "a", "teacher": "a", "completions": [completion(math.log(0.1), math.log(0.9))]},
        {"sample_id": pair.sample_id, "model": "b", "teacher": "b", "completions": [completion(math.log(0.5), math.log(0.5))]},
        # c answered something else: its text does not contain the target, so it takes no part
        {"sample_id": pair.sample_id, "model": "c", "teacher": "c", "completions": [completion(0.0, -9.0, text="no")]},
    ]
    folder = RunFolder(tmp_path)
    folder.teacher_outputs.parent.mkdir(parents=True)
    folder.teacher_outputs.write_text("".join(json.dumps(r) + "\n" for r in records))
    teachers = [{"name": "a", "weight": 1.0}, {"name": "b", "weight": 3.0}, {"name": "c", "weight": 100.0}]
    folder.write_config({"teachers": teachers})

    fill = api_fill(tmp_path, tok, k=2, loss="forward_kl", teacher="b")
    store = write_store(tmp_path, samples, fill, teacher="b", k=2, vocab_size=len(tok), source="api")
    ids, lps = store.rows(store.offset(sample), sample.n_targets)
    for row, (piece, token) in enumerate(zip(pieces, answer_ids, strict=True)):
        if piece == " the":
            continue  # both options are one token there
        # answer token: 1*0.9 + 3*0.5 = 2.4; " the": 1*0.1 + 3*0.5 = 1.6 (c, weight 100, left out)
        assert ids[row].tolist() == [token, the_id]
        np.testing.assert_allclose(np.exp(lps[row].astype(np.float64)), [0.6, 0.4], rtol=1e-3)
