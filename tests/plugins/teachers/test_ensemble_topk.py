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
from stillhouse.plugins.students.teacher_store import TopKStore, write_store
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


def test_local_teachers_top_k_are_stored_each_and_combined_by_weight(
    tmp_path: Path, tiny_teacher_dir: Path, tiny_model_dir: Path
) -> None:
    from stillhouse.kernel.interfaces import NamedTeacher, TeacherConfig
    from stillhouse.plugins.students.ensemble_store import TEACHERS_DIR, ensemble_store

    k = 4
    tok = load_tokenizer(str(tiny_teacher_dir))
    samples, _ = encode_pairs(tok, nli_pairs(3), max_length=512)
    big = NamedTeacher("big", 3.0, TeacherConfig(model=f"hf/{tiny_teacher_dir}"))
    small = NamedTeacher("small", 1.0, TeacherConfig(model=f"hf/{tiny_model_dir}"))
    logs: list[str] = []
    store = ensemble_store(tmp_path, samples, [big, small], tok, k=k, batch_tokens=400, log=logs.append)
    assert store.meta.source == "ensemble" and store.meta.coverage == 1.0
    own = {t.name: TopKStore(tmp_path / TEACHERS_DIR / t.name) for t in (big, small)}
    assert {s.meta.teacher for s in own.values()} == {big.config.model, small.config.model}
    vocab = len(tok)
    differs = 0
    for sample in samples:
        n = sample.n_targets
        # by hand: each teacher's stored top-k as a dense distribution, mixed 3:1, cut to k, renormalised
        mix = np.zeros((n, vocab))
        for named in (big, small):
            ids, lps = own[named.name].rows(own[named.name].offset(sample), n)
            dense = np.zeros((n, vocab))
            np.put_along_axis(dense, ids.astype(np.int64), np.exp(lps.astype(np.float64)), axis=1)
            mix += named.weight * dense
        mix /= big.weight + small.weight
        top = -np.sort(-mix, axis=1)[:, :k]
        ids, lps = store.rows(store.offset(sample), n)
        got = np.exp(lps.astype(np.float64))
        # the combined top-k holds the k heaviest tokens of the mix (ties may come in either order) ...
        np.testing.assert_allclose(np.sort(got, axis=1)[:, ::-1], top / top.sum(1, keepdims=True), rtol=2e-3)
        # ... each with its own share of the mix
        chosen = np.take_along_axis(mix, ids.astype(np.int64), axis=1)
        np.testing.assert_allclose(got, chosen / chosen.sum(1, keepdims=True), rtol=2e-3)
        _, big_lps = own["big"].rows(own["big"].offset(sample), n)
        alone = np.exp(big_lps.astype(np.float64))
        alone /= alone.sum(1, keepdims=True)
        differs += int(not np.allclose(np.sort(got, axis=1), np.sort(alone, axis=1), atol=1e-2))
    assert differs  # not the big teacher's distribution alone: the small one's probabilities took part
    assert not any("reused" in line for line in logs)
    # a new weight: the combination is redone from the teachers' own stores, no teacher runs again
    logs.clear()
    heavier = NamedTeacher("small", 5.0, small.config)
    again = ensemble_store(tmp_path, samples, [big, heavier], tok, k=k, batch_tokens=400, log=logs.append)
    assert sum("top-k store reused" in line for line in logs) == 2 and not any("computing" in line for line in logs)
    assert again.meta.teacher != store.meta.teacher
