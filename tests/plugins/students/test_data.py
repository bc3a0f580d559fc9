"""Tokenising TrainPairs: prompt never a target, per-sample shifted targets, end-of-turn learnt."""

from __future__ import annotations

from pathlib import Path

from stillhouse.kernel.interfaces import IGNORE_INDEX, TrainPair
from stillhouse.plugins.hf_models import FALLBACK_CHAT_TEMPLATE, load_tokenizer
from stillhouse.plugins.students.data import encode_pair, encode_pairs

PAIR = TrainPair("s1", [{"role": "user", "content": "Is the sky blue?"}], "Yes. Answer: entailment")


def test_only_answer_tokens_are_targets_and_targets_are_shifted(tiny_tokenizer_dir: Path) -> None:
    tok = load_tokenizer(str(tiny_tokenizer_dir))
    sample, status = encode_pair(tok, PAIR, max_length=128)
    assert status == "ok" and sample is not None
    prompt = tok.apply_chat_template(PAIR.messages, tokenize=False, add_generation_prompt=True)
    prompt_ids = tok(prompt, add_special_tokens=False)["input_ids"]
    assert sample.input_ids[: len(prompt_ids)] == prompt_ids
    answer_ids = sample.input_ids[len(prompt_ids) :]
    # The answer decodes to the target and ends with end-of-turn; nothing after it is learnt.
    assert tok.decode(answer_ids[:-1]).strip() == PAIR.target
    assert answer_ids[-1] == tok.eos_token_id
    # Position t predicts token t+1: the last prompt position predicts the first answer token,
    # earlier prompt positions and the final position predict nothing.
    assert sample.targets[: len(prompt_ids) - 1] == [IGNORE_INDEX] * (len(prompt_ids) - 1)
    assert sample.targets[len(prompt_ids) - 1 : -1] == answer_ids
    assert sample.targets[-1] == IGNORE_INDEX
    assert sample.n_targets == len(answer_ids)


def test_fallback_template_when_the_model_has_none(tiny_tokenizer_dir: Path, tmp_path: Path) -> None:
    bare = load_tokenizer(str(tiny_tokenizer_dir))
    bare.chat_template = None
    bare.save_pretrained(tmp_path)
    (tmp_path / "chat_template.jinja").unlink(missing_ok=True)
    tok = load_tokenizer(str(tmp_path))
    assert tok.chat_template == FALLBACK_CHAT_TEMPLATE
    sample, _ = encode_pair(tok, PAIR, max_length=128)
    assert sample is not None
    text = tok.decode(sample.input_ids)
    assert text.startswith("User: Is the sky blue?\nAssistant:")
    # Without an end-of-turn in the template, end-of-sequence is appended so the student learns to stop.
    assert sample.input_ids[-1] == tok.eos_token_id


def test_truncation_and_dropping_are_reported(tiny_tokenizer_dir: Path) -> None:
    tok = load_tokenizer(str(tiny_tokenizer_dir))
    long_answer = TrainPair("s2", PAIR.messages, "word " * 200)
    long_prompt = TrainPair("s3", [{"role": "user", "content": "question " * 200}], "ok")
    empty = TrainPair("s4", PAIR.messages, "   ")
    samples, report = encode_pairs(tok, [PAIR, long_answer, long_prompt, empty], max_length=64)
    assert [s.sample_id for s in samples] == ["s1", "s2"]
    assert all(len(s.input_ids) <= 64 for s in samples)
    assert report.truncated == 1
    assert report.dropped == {"prompt_too_long": 1, "empty_target": 1}
    assert report.target_tokens == sum(s.n_targets for s in samples)
