"""Scoring given tokens, vLLM style: ``POST /v1/completions`` with token-id prompts and
``prompt_logprobs = k`` returns, for every prompt position, the model's log-prob of that token and
its top-k alternatives given the tokens before it. ``still serve`` answers it so an on-policy
trainer can use a served teacher (``train.on_policy``) the way it uses vLLM.

Request: ``{"model", "prompt": [ids] | [[ids], ...], "prompt_logprobs": k, "max_tokens": 0 | 1}``
(scoring only: nothing is generated; ``max_tokens = 1`` is accepted because vLLM requires it).
Response: ``choices[i].prompt_logprobs`` is ``[None, {id: {"logprob", "rank", "decoded_token"}}, ...]``,
one entry per prompt token (the first has no context), as vLLM returns it.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from stillhouse.plugins.teachers.openai_format import RequestError

MAX_PROMPT_LOGPROBS = 256
"""Most alternatives per position (vLLM's default limit is 20; a distillation top-k is often 32)."""


def parse_score_request(body: Any, *, context: int | None = None) -> tuple[list[list[int]], int]:
    """(token-id prompts, k) of a scoring request, or RequestError naming what is wrong."""
    if not isinstance(body, dict):
        raise RequestError("the body must be a JSON object")
    prompt = body.get("prompt")
    prompts = [prompt] if isinstance(prompt, list) and prompt and all(isinstance(t, int) for t in prompt) else prompt
    if (
        not isinstance(prompts, list)
        or not prompts
        or not all(isinstance(p, list) and p and all(isinstance(t, int) and t >= 0 for t in p) for p in prompts)
    ):
        raise RequestError("'prompt' must be a list of token ids or a list of such lists (this server scores tokens)")
    k = body.get("prompt_logprobs")
    if isinstance(k, bool) or not isinstance(k, int) or not 0 <= k <= MAX_PROMPT_LOGPROBS:
        raise RequestError(f"'prompt_logprobs' must be an integer 0-{MAX_PROMPT_LOGPROBS} (this endpoint only scores)")
    max_tokens = body.get("max_tokens", 0)
    if isinstance(max_tokens, bool) or max_tokens not in (0, 1):
        raise RequestError("'max_tokens' must be 0 or 1: /v1/completions here scores prompts, it does not generate")
    if context is not None and (longest := max(len(p) for p in prompts)) > context:
        raise RequestError(f"a prompt of {longest} tokens exceeds this model's context of {context} tokens")
    return prompts, k


class PromptScorer:
    """Runs the model over token-id prompts (one padded forward, guarded by a lock)."""

    def __init__(self, model: Any, tokenizer: Any) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.lock = threading.Lock()

    def score(self, prompts: list[list[int]], k: int) -> list[list[dict[str, dict[str, Any]] | None]]:
        import torch

        device = next(self.model.parameters()).device
        width = max(len(p) for p in prompts)
        ids = torch.zeros((len(prompts), width), dtype=torch.long)
        mask = torch.zeros_like(ids)
        for row, prompt in enumerate(prompts):
            ids[row, : len(prompt)] = torch.tensor(prompt)
            mask[row, : len(prompt)] = 1
        with self.lock, torch.no_grad():
            logits = self.model(input_ids=ids.to(device), attention_mask=mask.to(device), use_cache=False).logits
        vocab = len(self.tokenizer)
        logprobs = torch.log_softmax(logits[..., :vocab].float(), dim=-1).cpu()
        results: list[list[dict[str, dict[str, Any]] | None]] = []
        for row, prompt in enumerate(prompts):
            entries: list[dict[str, dict[str, Any]] | None] = [None]
            for t in range(1, len(prompt)):
                dist = logprobs[row, t - 1]
                token = prompt[t]
                chosen = float(dist[token]) if token < vocab else float("-inf")
                entry = {
                    str(token): {
                        "logprob": chosen,
                        "rank": int((dist > chosen).sum()) + 1,
                        "decoded_token": self.decode(token),
                    }
                }
                if k:
                    values, top = torch.topk(dist, min(k, vocab))
                    for rank, (value, alt) in enumerate(zip(values.tolist(), top.tolist(), strict=True), start=1):
                        entry.setdefault(str(alt), {"logprob": value, "rank": rank, "decoded_token": self.decode(alt)})
                entries.append(entry)
            results.append(entries)
        return results

    def decode(self, token: int) -> str:
        return str(self.tokenizer.convert_ids_to_tokens(token))


def score_response(model_id: str, prompts: list[list[int]], scored: list[list[Any]]) -> dict[str, Any]:
    n_prompt = sum(len(p) for p in prompts)
    return {
        "id": f"cmpl-score-{time.time_ns()}",
        "object": "text_completion",
        "created": int(time.time()),
        "model": model_id,
        "choices": [
            {"index": i, "text": "", "logprobs": None, "finish_reason": "length", "prompt_logprobs": entries}
            for i, entries in enumerate(scored)
        ],
        "usage": {"prompt_tokens": n_prompt, "completion_tokens": 0, "total_tokens": n_prompt},
    }
