"""Rank classification: how likely a model finds each of a fixed set of replies.

Each choice is scored as the sum of the log-probabilities of its tokens right after the prompt
rendered with the chat template's generation prompt (what the model would have to generate to
answer with that label), not length-normalised. Prompt and choice are tokenised apart and joined,
so the choice's tokens are the ones generation would produce; sequences are right-padded, which a
causal model's earlier positions never see.
"""

from __future__ import annotations

from typing import Any

from stillhouse.kernel.interfaces import Message


def score_choices(
    model: Any, tokenizer: Any, prompts: list[list[Message]], choices: list[str], *, batch_size: int = 8
) -> list[list[float]]:
    import torch

    from stillhouse.plugins.hf_models import render_prompts

    if not choices:
        raise ValueError("no choices to score")
    device = next(model.parameters()).device
    prefixes = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in render_prompts(tokenizer, prompts)]
    labels = [tokenizer(c, add_special_tokens=False)["input_ids"] for c in choices]
    if any(not ids for ids in labels):
        raise ValueError("a choice tokenises to nothing")
    pairs = [(p, c) for p in range(len(prompts)) for c in range(len(choices))]
    scores = [[0.0] * len(choices) for _ in prompts]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    for start in range(0, len(pairs), max(1, batch_size)):
        chunk = pairs[start : start + batch_size]
        seqs = [prefixes[p] + labels[c] for p, c in chunk]
        width = max(len(s) for s in seqs)
        ids = torch.full((len(seqs), width), pad, dtype=torch.long)
        mask = torch.zeros((len(seqs), width), dtype=torch.long)
        for row, seq in enumerate(seqs):
            ids[row, : len(seq)] = torch.tensor(seq)
            mask[row, : len(seq)] = 1
        with torch.inference_mode():
            logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits.float()
        logprobs = torch.log_softmax(logits, dim=-1)
        for row, (p, c) in enumerate(chunk):
            first = len(prefixes[p])
            target = torch.tensor(labels[c], device=logprobs.device)
            # the token at position i is predicted by the logits at position i - 1
            picked = logprobs[row, first - 1 : first - 1 + len(labels[c])].gather(1, target[:, None])
            scores[p][c] = float(picked.sum())
    return scores
