"""Teacher top-k over the teacher's *own* tokens, aligned to the student's positions by characters
(for the ``uld`` loss: teacher and student tokenizers differ).

**Alignment rule (same prefix).** Student target row ``j`` predicts the answer token covering
characters ``[s_j, e_j)`` given the text before ``s_j``. It gets the distribution of the teacher token
that *starts at the same character* ``s_j``: both models then predict "what text follows this same
prefix", so their next-token distributions are comparable however the two vocabularies cut words.

- One student token covering several teacher tokens: the student row takes the first of them (the one
  with the same prefix); the teacher tokens inside the student token have no student row and are
  dropped.
- One teacher token covering several student tokens: the first student token gets it; the student
  rows inside it get no teacher slot (cross-entropy only): no teacher distribution conditioned on
  their prefix exists.
- The end-of-turn row and rows past the teacher's text get no slot.

Each aligned row stores up to k teacher log-probs (the sampled token and its alternatives, sorted
descending, full-vocabulary log-softmax at T = 1). The id column holds the student id of the
alternative when its text is exactly one student token (what the GOLD-style hybrid of ``uld`` uses),
else -1 with a *finite* log-prob: ``uld`` counts a slot by its finite log-prob, the same-vocabulary
losses by its id, so such a store never feeds foreign tokens to ``forward_kl`` and friends.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from stillhouse.kernel.interfaces import Completion, TrainJob, TrainPair
from stillhouse.plugins.students.data import TokenizedSample, completion_text
from stillhouse.plugins.students.teacher_store import FillFn

Writer = Callable[[TokenizedSample, np.ndarray, np.ndarray], None]


@dataclass
class TeacherTokens:
    """A teacher's answer as its own tokens: the text, each token's character span in it, and each
    token's top alternatives ``[(text, logprob), ...]`` (the chosen token included)."""

    text: str
    spans: list[tuple[int, int]]
    options: list[list[tuple[str, float]]]


def from_completion(completion: Completion) -> TeacherTokens | None:
    """An API completion with ``top_logprobs`` as TeacherTokens (None when its tokens do not spell its text)."""
    tokens = completion.logprobs or []
    if not tokens or "".join(t.token for t in tokens) != completion.text:
        return None
    spans, options, cursor = [], [], 0
    for piece in tokens:
        spans.append((cursor, cursor + len(piece.token)))
        cursor += len(piece.token)
        merged = {piece.token: piece.logprob, **dict(piece.top)}
        options.append(sorted(merged.items(), key=lambda kv: kv[1], reverse=True))
    return TeacherTokens(completion.text, spans, options)


def prefix_ends(spans: list[tuple[int, int]]) -> list[int | None]:
    """Where each token's prefix ends: the previous token's end (its own start for the first, or
    after a special token). Tokenizers that trim a leading space from offsets (" world" -> 6..11)
    still give the prefix that the model conditions on. None for empty spans (special tokens)."""
    ends: list[int | None] = []
    previous: int | None = None
    for start, end in spans:
        ends.append(None if end <= start else (previous if previous is not None else start))
        previous = end if end > start else None
    return ends


def align_prefix(
    sample: TokenizedSample,
    student_offsets: list[tuple[int, int]],
    teacher: TeacherTokens,
    table: dict[str, int],
    k: int,
) -> tuple[np.ndarray, np.ndarray] | None:
    """[n_targets, k] (ids, log-probs) for one sample by the same-prefix rule (module doc), or None
    when the sample's target text is not found in the teacher's text."""
    target = sample.target_text.strip()
    in_teacher = teacher.text.rfind(target)
    in_answer = sample.answer_text.find(target)
    if not target or in_teacher < 0 or in_answer < 0:
        return None
    shift = in_teacher - in_answer
    by_start = {start: i for i, start in enumerate(prefix_ends(teacher.spans)) if start is not None}
    n = sample.n_targets
    ids = np.full((n, k), -1, dtype=np.int64)
    lps = np.full((n, k), -np.inf, dtype=np.float32)
    for row, start in enumerate(prefix_ends(student_offsets[:n])):
        if start is None or start < in_answer or start >= in_answer + len(target):
            continue  # special tokens, template text around the answer
        index = by_start.get(start + shift)
        if index is None:
            continue
        for slot, (text, lp) in enumerate(teacher.options[index][:k]):
            ids[row, slot] = table.get(text, -1)
            lps[row, slot] = lp
    return ids, lps


def answer_offsets(tokenizer: Any, answer_text: str) -> list[tuple[int, int]]:
    """Character spans of the student's answer tokens (the answer ids were tokenised from this text)."""
    enc = tokenizer(answer_text, add_special_tokens=False, return_offsets_mapping=True)
    return [(int(a), int(b)) for a, b in enc["offset_mapping"]]


def api_cross_fill(completions: dict[str, list[Completion]], tokenizer: Any, *, k: int) -> FillFn:
    """A FillFn from stored API completions with ``top_logprobs`` (any teacher tokenizer)."""
    from stillhouse.plugins.students.api_logprobs import string_to_id

    table = string_to_id(tokenizer)

    def fill(samples: list[TokenizedSample], write: Writer) -> None:
        for sample in samples:
            offsets = answer_offsets(tokenizer, sample.answer_text)
            for completion in completions.get(sample.sample_id) or []:
                teacher = from_completion(completion)
                aligned = align_prefix(sample, offsets, teacher, table, k) if teacher else None
                if aligned is not None:
                    write(sample, *aligned)
                    break

    return fill


@dataclass
class TeacherSequence:
    """A pair as the teacher's own tokens: the prompt ids, the answer ids and their character spans."""

    prompt_ids: list[int]
    answer_ids: list[int]
    spans: list[tuple[int, int]]
    answer_text: str


def teacher_sequence(teacher_tokenizer: Any, pair: TrainPair) -> TeacherSequence:
    """The pair's prompt and target through the teacher's tokenizer and chat template."""
    prompt_text, answer_text = completion_text(teacher_tokenizer, pair)
    prompt_ids = teacher_tokenizer(prompt_text, add_special_tokens=False)["input_ids"]
    enc = teacher_tokenizer(answer_text, add_special_tokens=False, return_offsets_mapping=True)
    spans = [(int(a), int(b)) for a, b in enc["offset_mapping"]]
    return TeacherSequence(list(prompt_ids), list(enc["input_ids"]), spans, answer_text)


def model_teacher_tokens(
    model: Any, teacher_tokenizer: Any, pairs: list[TrainPair], *, k: int, batch_tokens: int = 2048
) -> list[TeacherTokens]:
    """Run a local teacher (its own tokenizer and chat template) over each pair's prompt and target,
    in right-padded batches of about ``batch_tokens`` tokens (attention mask on the padding); its
    top-k at every answer token, with the alternatives as decoded text. One entry per pair, in order."""
    import torch

    from stillhouse.plugins.students.teacher_store import length_groups

    sequences = [teacher_sequence(teacher_tokenizer, pair) for pair in pairs]
    lengths = [len(s.prompt_ids) + len(s.answer_ids) for s in sequences]
    pad_id = teacher_tokenizer.pad_token_id if teacher_tokenizer.pad_token_id is not None else 0
    vocab = len(teacher_tokenizer)
    device = next(model.parameters()).device
    result: list[TeacherTokens | None] = [None] * len(pairs)
    for group in length_groups(lengths, batch_tokens):
        width = max(lengths[i] for i in group)
        ids = torch.full((len(group), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(group), width), dtype=torch.long)
        for row, i in enumerate(group):
            ids[row, : lengths[i]] = torch.tensor(sequences[i].prompt_ids + sequences[i].answer_ids)
            mask[row, : lengths[i]] = 1
        with torch.no_grad():
            logits = model(input_ids=ids.to(device), attention_mask=mask.to(device), use_cache=False).logits
        for row, i in enumerate(group):
            seq = sequences[i]
            # Position p predicts token p + 1: the answer tokens are predicted from len(prompt) - 1 on.
            start = len(seq.prompt_ids) - 1
            logprobs = torch.log_softmax(logits[row, start : start + len(seq.answer_ids), :vocab].float(), dim=-1)
            values, top = torch.topk(logprobs, min(k, vocab), dim=-1)
            options = [
                [(teacher_tokenizer.decode([int(t)]), float(v)) for t, v in zip(row_ids, row_values, strict=True)]
                for row_ids, row_values in zip(top.tolist(), values.tolist(), strict=True)
            ]
            result[i] = TeacherTokens(seq.answer_text, seq.spans, options)
    return [t for t in result if t is not None]


def model_cross_fill(
    model: Any, teacher_tokenizer: Any, student_tokenizer: Any, pairs: list[TrainPair], *, k: int,
    batch_tokens: int = 2048,
) -> FillFn:
    """A FillFn from a local teacher of another family: teacher forwards in batches of about
    ``batch_tokens`` tokens (run once; the rows are stored like every top-k store)."""
    from stillhouse.plugins.students.api_logprobs import string_to_id

    table = string_to_id(student_tokenizer)
    by_key = {(p.sample_id, p.target): p for p in pairs}

    def fill(samples: list[TokenizedSample], write: Writer) -> None:
        known = [s for s in samples if (s.sample_id, s.target_text) in by_key]
        taught = model_teacher_tokens(
            model, teacher_tokenizer, [by_key[(s.sample_id, s.target_text)] for s in known], k=k,
            batch_tokens=batch_tokens,
        )
        for sample, teacher in zip(known, taught, strict=True):
            aligned = align_prefix(sample, answer_offsets(student_tokenizer, sample.answer_text), teacher, table, k)
            if aligned is not None:
                write(sample, *aligned)

    return fill


def cross_fill(job: TrainJob, student_tokenizer: Any, *, k: int, loss: str) -> FillFn:
    """The FillFn for the job's teacher: stored API ``top_logprobs``, or a local ``hf/`` teacher run once."""
    from stillhouse.plugins.students.api_logprobs import api_fill, read_completions
    from stillhouse.plugins.students.teacher import load_teacher, local_teacher_spec

    assert job.teacher is not None
    if local_teacher_spec(job.teacher) is None:
        # every teacher's completions of a sample ([[teachers]]): the first one that aligns is used
        completions = {
            sample_id: [c for per_teacher in by_teacher.values() for c in per_teacher]
            for sample_id, by_teacher in read_completions(job.run_dir).items()
        }
        if not any(completions.values()):
            api_fill(job.run_dir, student_tokenizer, k=k, loss=loss, teacher=job.teacher.model)  # raises: no logprobs
        return api_cross_fill(completions, student_tokenizer, k=k)
    model, teacher_tokenizer = load_teacher(job.teacher)
    return model_cross_fill(model, teacher_tokenizer, student_tokenizer, [*job.train, *job.validation], k=k)
