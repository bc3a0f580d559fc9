"""Teacher top-k from an API teacher's ``top_logprobs`` (the stored teacher results), mapped onto the
student's vocabulary.

An API returns, per generated token, its text, log-prob and up to 20 alternatives as *text*. A
student position gets the teacher's alternatives when

1. the pair's target text occurs in the teacher's completion (the target is the teacher's text,
   possibly without its reasoning), and the completion's tokens concatenate to its text;
2. the student's answer token at that position covers exactly the same characters as one teacher
   token (same segmentation there); and
3. each alternative's text is a single student token (decoded-string lookup). Alternatives that are
   not are dropped; the renormalisation over the remaining top-k (see ``plugins.losses.base``) then
   covers what maps.

Positions that fail get no slot: cross-entropy still trains them, and the store's ``coverage`` says
what share of target tokens got a teacher distribution. Probabilities are those of the teacher's own
context (its prompt, possibly its reasoning before the target), not the student's prompt.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from stillhouse.kernel.errors import Location, ModelError
from stillhouse.kernel.interfaces import Completion, TokenLogprob
from stillhouse.kernel.run_folder import RunFolder
from stillhouse.plugins.students.data import TokenizedSample
from stillhouse.plugins.students.ensemble_topk import combine_topk
from stillhouse.plugins.students.teacher_store import FillFn

Writer = Callable[[TokenizedSample, np.ndarray, np.ndarray], None]


def read_completions(run_dir: Path) -> dict[str, dict[str, list[Completion]]]:
    """sample_id -> teacher name ("" for the one [teacher]) -> completions with token log-probs (a
    later result of a teacher supersedes its earlier one)."""
    found: dict[str, dict[str, list[Completion]]] = {}
    for result in RunFolder(run_dir).teacher_results():
        with_logprobs = [c for c in result.completions if c.logprobs]
        mine = found.setdefault(result.sample_id, {})
        if with_logprobs or result.teacher in mine:
            mine[result.teacher] = with_logprobs
    return found


def teacher_weights(run_dir: Path) -> dict[str, float]:
    """The weight of each [[teachers]] entry of the run's config ("" -> 1.0 for the one [teacher])."""
    entries = RunFolder(run_dir).read_config().get("teachers") or []
    return {"": 1.0, **{str(e.get("name")): float(e.get("weight", 1.0)) for e in entries if isinstance(e, dict)}}


def string_to_id(tokenizer: Any) -> dict[str, int]:
    """Decoded text of each single student token -> its id (partial UTF-8 pieces left out)."""
    table: dict[str, int] = {}
    for idx in range(len(tokenizer)):
        text = tokenizer.decode([idx])
        if text and "\ufffd" not in text:
            table.setdefault(text, idx)
    return table


def align_sample(
    sample: TokenizedSample,
    answer_text: str,
    answer_offsets: list[tuple[int, int]],
    completion: Completion,
    table: dict[str, int],
    k: int,
) -> tuple[np.ndarray, np.ndarray] | None:
    """[n_targets, k] ids and log-probs for one sample from one API completion, or None."""
    text = completion.text
    tokens = completion.logprobs or []
    if "".join(t.token for t in tokens) != text:
        return None
    target = sample.target_text.strip()
    in_completion = text.rfind(target)
    in_answer = answer_text.find(target)
    if not target or in_completion < 0 or in_answer < 0:
        return None
    shift = in_completion - in_answer
    by_span: dict[tuple[int, int], TokenLogprob] = {}
    cursor = 0
    for piece in tokens:
        by_span[(cursor, cursor + len(piece.token))] = piece
        cursor += len(piece.token)
    n = sample.n_targets
    ids = np.full((n, k), -1, dtype=np.int64)
    lps = np.full((n, k), -np.inf, dtype=np.float32)
    for row, (start, end) in enumerate(answer_offsets[:n]):
        token = by_span.get((start + shift, end + shift))
        if token is None:
            continue
        options = {token.token: token.logprob, **dict(token.top)}
        mapped = sorted(((lp, table[t]) for t, lp in options.items() if t in table), reverse=True)[:k]
        for slot, (lp, idx) in enumerate(mapped):
            ids[row, slot], lps[row, slot] = idx, lp
    return ids, lps


def api_fill(run_dir: Path, tokenizer: Any, *, k: int, loss: str, teacher: str) -> FillFn:
    completions = read_completions(run_dir)
    weights = teacher_weights(run_dir)
    if not any(c for per_teacher in completions.values() for c in per_teacher.values()):
        raise ModelError(
            f"loss '{loss}' needs the teacher's token probabilities, but teacher '{teacher}' returned none "
            f"(no completion in {RunFolder(run_dir).teacher_outputs} has logprobs)",
            where=Location(field="teacher.top_logprobs"),
            hint="set teacher.logprobs = true and teacher.top_logprobs = 20 if the API supports them and re-run "
            'the generate stage, use a local "hf/..." teacher sharing the student\'s tokenizer, or train.loss = "sft"',
            title="No teacher probabilities",
        )
    table = string_to_id(tokenizer)

    def fill(samples: list[TokenizedSample], write: Writer) -> None:
        for sample in samples:
            per_teacher = completions.get(sample.sample_id) or {}
            if not any(per_teacher.values()):
                continue
            # The answer ids were tokenised from this text, so its offsets line up with the targets.
            enc = tokenizer(sample.answer_text, add_special_tokens=False, return_offsets_mapping=True)
            offsets = [tuple(o) for o in enc["offset_mapping"]]
            parts = []  # (weight, aligned) of each teacher with a completion that aligns
            for name, candidates in per_teacher.items():
                for completion in candidates:
                    aligned = align_sample(sample, sample.answer_text, offsets, completion, table, k)
                    if aligned is not None:
                        parts.append((weights.get(name, 1.0), aligned))
                        break
            if len(parts) == 1:
                write(sample, *parts[0][1])
            elif parts:  # [[teachers]]: one distribution out of several teachers' top-k
                write(sample, *combine_topk(parts, k))

    return fill
