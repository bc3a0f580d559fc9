"""Rank classification: how likely a model finds each of a fixed set of replies.

Each choice is scored as the sum of the log-probabilities of its tokens right after the prompt
rendered with the chat template's generation prompt (what the model would have to generate to
answer with that label), not length-normalised. Prompt and choice are tokenised apart and joined,
so the choice's tokens are the ones generation would produce.

Each prompt is run once: a batch of prompts (left-padded, positions counted from each prompt's first
real token) fills a KV cache whose last position scores every choice's first token; the cache is
repeated once per choice and the choices' remaining tokens (right-padded) run on top of it. With C
choices this costs one prompt pass instead of C (NLI: about 3x fewer tokens through the model).
A model whose forward returns no cache is scored the plain way, one prompt + choice sequence per row.
"""

from __future__ import annotations

import inspect
from typing import Any

from stillhouse.kernel.interfaces import Message


def score_choices(
    model: Any, tokenizer: Any, prompts: list[list[Message]], choices: list[str], *, batch_size: int = 8
) -> list[list[float]]:
    """``scores[p][c]``: log P(choice c | prompt p); ``batch_size`` prompts per forward pass."""
    from stillhouse.plugins.hf_models import render_prompts

    if not choices:
        raise ValueError("no choices to score")
    prefixes = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in render_prompts(tokenizer, prompts)]
    labels = [tokenizer(c, add_special_tokens=False)["input_ids"] for c in choices]
    if any(not ids for ids in labels):
        raise ValueError("a choice tokenises to nothing")
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    scores: list[list[float]] = []
    step = max(1, batch_size)
    for start in range(0, len(prefixes), step):
        group = prefixes[start : start + step]
        found = _scores_with_cache(model, group, labels, pad)
        scores += found if found is not None else _scores_plain(model, group, labels, pad, batch_size=step)
    return scores


def _scores_with_cache(model: Any, prefixes: list[list[int]], labels: list[list[int]], pad: int) -> list[list[float]] | None:
    """One pass over the prompts, then the choices on the repeated cache; None when there is no cache."""
    import torch

    device = next(model.parameters()).device
    lengths = torch.tensor([len(p) for p in prefixes])
    width = int(lengths.max())
    ids = torch.full((len(prefixes), width), pad, dtype=torch.long)
    mask = torch.zeros((len(prefixes), width), dtype=torch.long)
    for row, prefix in enumerate(prefixes):  # left padding: every prompt ends at the last column
        ids[row, width - len(prefix) :] = torch.tensor(prefix)
        mask[row, width - len(prefix) :] = 1
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    # only the last position's logits are read: the LM head skips the rest of the prompt where it can
    accepted = inspect.signature(model.forward).parameters
    last_only = {"logits_to_keep": 1} if "logits_to_keep" in accepted else {}
    # transformers 5 names the KV cache ``cache`` (``past_key_values`` is deprecated, removed in 5.40)
    cache_key = "cache" if "cache" in accepted else "past_key_values"
    with torch.inference_mode():
        out = model(
            input_ids=ids.to(device),
            attention_mask=mask.to(device),
            position_ids=positions.to(device),
            use_cache=True,
            **last_only,
        )
        cache = getattr(out, "cache", None)
        if cache is None:  # transformers before the rename
            cache = getattr(out, "past_key_values", None)
        if cache is None or not hasattr(cache, "batch_repeat_interleave"):
            return None
        first = torch.log_softmax(out.logits[:, -1].float(), dim=-1)  # predicts every choice's first token
        n_choices, rest = len(labels), max(len(label) for label in labels) - 1
        later = None
        if rest > 0:
            cache.batch_repeat_interleave(n_choices)
            tail = torch.full((len(prefixes) * n_choices, rest), pad, dtype=torch.long)
            tail_mask = torch.zeros_like(tail)
            for row in range(len(prefixes)):
                for c, label in enumerate(labels):  # right padding: later pads are never attended to
                    tail[row * n_choices + c, : len(label) - 1] = torch.tensor(label[:-1])
                    tail_mask[row * n_choices + c, : len(label) - 1] = 1
            full_mask = torch.cat([mask.repeat_interleave(n_choices, dim=0), tail_mask], dim=1)
            tail_positions = lengths.repeat_interleave(n_choices)[:, None] + torch.arange(rest)[None, :]
            later = model(
                input_ids=tail.to(device),
                attention_mask=full_mask.to(device),
                position_ids=tail_positions.to(device),
                use_cache=True,
                **{cache_key: cache},
            ).logits.float()
            later = torch.log_softmax(later, dim=-1)
    scores = []
    for row in range(len(prefixes)):
        row_scores = []
        for c, label in enumerate(labels):
            total = float(first[row, label[0]])
            for i, token in enumerate(label[1:]):  # token i+1 is predicted after the choice's token i
                assert later is not None
                total += float(later[row * n_choices + c, i, token])
            row_scores.append(total)
        scores.append(row_scores)
    return scores


def _scores_plain(
    model: Any, prefixes: list[list[int]], labels: list[list[int]], pad: int, *, batch_size: int
) -> list[list[float]]:
    """Each prompt + choice as its own right-padded row (models without a KV cache)."""
    import torch

    device = next(model.parameters()).device
    pairs = [(p, c) for p in range(len(prefixes)) for c in range(len(labels))]
    scores = [[0.0] * len(labels) for _ in prefixes]
    for start in range(0, len(pairs), batch_size):
        chunk = pairs[start : start + batch_size]
        seqs = [prefixes[p] + labels[c] for p, c in chunk]
        width = max(len(s) for s in seqs)
        ids = torch.full((len(seqs), width), pad, dtype=torch.long)
        mask = torch.zeros((len(seqs), width), dtype=torch.long)
        for row, seq in enumerate(seqs):
            ids[row, : len(seq)] = torch.tensor(seq)
            mask[row, : len(seq)] = 1
        with torch.inference_mode():
            logits = model(input_ids=ids.to(device), attention_mask=mask.to(device), use_cache=False).logits.float()
        logprobs = torch.log_softmax(logits, dim=-1)
        for row, (p, c) in enumerate(chunk):
            first = len(prefixes[p])
            target = torch.tensor(labels[c], device=logprobs.device)
            # the token at position i is predicted by the logits at position i - 1
            picked = logprobs[row, first - 1 : first - 1 + len(labels[c])].gather(1, target[:, None])
            scores[p][c] = float(picked.sum())
    return scores
