"""TrainPairs -> token ids with next-token targets, through the student's chat template.

The prompt is rendered with ``add_generation_prompt=True`` and tokenised on its own, exactly as at
inference (``generate_chat``), then the assistant part of the template follows: the answer, the
end-of-turn token, and nothing after it. Targets are shifted *per sample* (``targets[t]`` is the id
that position ``t`` must predict) so samples can be packed into one row without a position ever
predicting the next sample's first token. Only answer tokens are targets; the prompt never is.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from stillhouse.kernel.interfaces import IGNORE_INDEX, TrainPair


@dataclass
class TokenizedSample:
    input_ids: list[int]
    targets: list[int]
    weight: float = 1.0
    sample_id: str = ""
    target_text: str = ""
    answer_text: str = ""
    """The assistant part as the chat template rendered it (the answer ids are its tokens)."""
    prompt_length: int = 0

    @property
    def n_targets(self) -> int:
        return sum(1 for t in self.targets if t != IGNORE_INDEX)

    def key(self) -> str:
        """Content address of the token sequence: the teacher store is valid for exactly these ids."""
        digest = hashlib.sha1()
        digest.update(len(self.input_ids).to_bytes(4, "little"))
        for ids in (self.input_ids, self.targets):
            digest.update(b"".join(int(i).to_bytes(4, "little", signed=True) for i in ids))
        return digest.hexdigest()[:20]

    def as_item(self) -> dict[str, Any]:
        return {"input_ids": self.input_ids, "targets": self.targets, "weight": self.weight}


@dataclass
class EncodeReport:
    """What tokenisation did to the pairs: kept, answers cut at max_length, dropped and why."""

    pairs: int = 0
    kept: int = 0
    truncated: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    target_tokens: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "pairs": self.pairs,
            "kept": self.kept,
            "truncated": self.truncated,
            "dropped": dict(self.dropped),
            "target_tokens": self.target_tokens,
        }


def completion_text(tokenizer: Any, pair: TrainPair) -> tuple[str, str]:
    """(prompt text, assistant text) as the chat template renders them."""
    prompt = tokenizer.apply_chat_template(pair.messages, tokenize=False, add_generation_prompt=True)
    full = tokenizer.apply_chat_template(
        [*pair.messages, {"role": "assistant", "content": pair.target}], tokenize=False
    )
    if full.startswith(prompt):
        return prompt, full[len(prompt) :]
    # Some templates rewrite earlier turns once an answer follows (e.g. strip reasoning); the answer
    # alone, then end-of-sequence, is the closest faithful target.
    return prompt, pair.target


def encode_pair(tokenizer: Any, pair: TrainPair, max_length: int) -> tuple[TokenizedSample | None, str]:
    """One pair as a sample, or (None, reason) when nothing of the answer fits."""
    prompt_text, answer_text = completion_text(tokenizer, pair)
    prompt_ids = tokenizer(prompt_text, add_special_tokens=False)["input_ids"]
    answer_ids = tokenizer(answer_text, add_special_tokens=False)["input_ids"]
    eos = tokenizer.eos_token_id
    if eos is not None:
        # Learn to stop: end-of-turn is a target; whatever the template puts after it is not.
        answer_ids = answer_ids[: answer_ids.index(eos) + 1] if eos in answer_ids else [*answer_ids, eos]
    if not pair.target.strip():
        return None, "empty_target"
    if len(prompt_ids) >= max_length - 1:
        return None, "prompt_too_long"
    status = "ok"
    if len(prompt_ids) + len(answer_ids) > max_length:
        answer_ids = answer_ids[: max_length - len(prompt_ids)]
        status = "truncated"
    labels = [IGNORE_INDEX] * len(prompt_ids) + answer_ids
    sample = TokenizedSample(
        input_ids=prompt_ids + answer_ids,
        targets=labels[1:] + [IGNORE_INDEX],
        weight=float(pair.weight),
        sample_id=pair.sample_id,
        target_text=pair.target,
        answer_text=answer_text,
        prompt_length=len(prompt_ids),
    )
    return sample, status


def encode_pairs(
    tokenizer: Any, pairs: Sequence[TrainPair], max_length: int
) -> tuple[list[TokenizedSample], EncodeReport]:
    report = EncodeReport(pairs=len(pairs))
    samples = []
    for pair in pairs:
        sample, status = encode_pair(tokenizer, pair, max_length)
        if sample is None:
            report.dropped[status] = report.dropped.get(status, 0) + 1
            continue
        report.truncated += status == "truncated"
        report.target_tokens += sample.n_targets
        samples.append(sample)
    report.kept = len(samples)
    return samples, report
