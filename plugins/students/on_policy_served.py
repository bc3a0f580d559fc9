"""A served teacher for on-policy batches: an OpenAI-compatible server that scores given tokens
(vLLM's ``prompt_logprobs`` on ``/v1/completions``; ``still serve`` answers it too).

The sampled sequences are sent as token ids, so the served model must share the student's
tokenizer, exactly like a local ``hf/`` teacher. One request per on-policy batch (every row in it).
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from typing import Any

import torch

from stillhouse.kernel.errors import Location, ModelError
from stillhouse.kernel.interfaces import IGNORE_INDEX, TeacherConfig
from stillhouse.kernel.teaching import HttpTeacherConfig


def served_model_name(teacher: TeacherConfig) -> str:
    """``openai/<name>`` (litellm's provider prefix) -> ``<name>``, as the server knows the model."""
    return teacher.model.split("/", 1)[1] if "/" in teacher.model else teacher.model


def post_json(url: str, body: dict[str, Any], api_key: str | None, timeout: float) -> dict[str, Any]:
    headers = {"Content-Type": "application/json"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    request = urllib.request.Request(url, json.dumps(body).encode(), headers)
    with urllib.request.urlopen(request, timeout=timeout) as response:
        answer = json.loads(response.read())
    if not isinstance(answer, dict):
        raise ValueError(f"{url} answered {type(answer).__name__}, not a JSON object")
    return answer


class ServedTeacher:
    """Teacher top-k over a batch's tokens from a scoring server; the same contract as ``LiveTeacher``."""

    def __init__(self, teacher: HttpTeacherConfig, *, k: int, timeout: float = 600.0) -> None:
        if not teacher.api_base:
            raise ValueError("a served teacher needs teacher.api_base")
        self.url = teacher.api_base.rstrip("/") + "/completions"
        self.model_name = served_model_name(teacher)
        self.api_key = os.environ.get(teacher.api_key_env) if teacher.api_key_env else None
        self.config = teacher
        self.k = k
        self.timeout = timeout
        self.requests = 0

    def score(self, prompts: list[list[int]], k: int) -> list[list[Any]]:
        """``prompt_logprobs`` of each token-id prompt (one request)."""
        body = {"model": self.model_name, "prompt": prompts, "max_tokens": 1, "prompt_logprobs": k}
        self.requests += 1
        answer = post_json(self.url, body, self.api_key, self.timeout)
        choices = sorted(answer.get("choices") or [], key=lambda c: c.get("index", 0))
        scored = [c.get("prompt_logprobs") for c in choices]
        if len(scored) != len(prompts) or any(not isinstance(s, list) for s in scored):
            raise ValueError(f"{self.url} returned no prompt_logprobs for every prompt")
        return scored

    def __call__(self, batch: dict[str, Any], device: Any) -> tuple[Any, Any, Any]:
        """(teacher_ids [R, W, k], teacher_logprobs [R, W, k], None) at the batch's target positions."""
        mask = batch["attention_mask"].bool().cpu()
        targets = batch["target_ids"].cpu()
        rows = [batch["input_ids"][r][mask[r].to(batch["input_ids"].device)].tolist() for r in range(len(mask))]
        try:
            scored = self.score(rows, self.k)
        except (OSError, ValueError) as exc:
            raise ModelError(
                f"the served teacher at {self.config.api_base} failed to score an on-policy batch: {exc}",
                where=Location(field="teacher.api_base"),
                hint="check that the server is up and serves the model; --resume continues from the last checkpoint",
            ) from exc
        shape = (*targets.shape, self.k)
        ids = torch.full(shape, -1, dtype=torch.int32)
        lps = torch.full(shape, float("-inf"), dtype=torch.float32)
        for r, entries in enumerate(scored):
            real = mask[r].nonzero().flatten().tolist()  # padded position of each real token
            for j, t in enumerate(real[:-1]):
                if targets[r, t] == IGNORE_INDEX:
                    continue
                entry = entries[j + 1] or {}  # the distribution of token j + 1 given tokens <= j
                top = sorted(((int(tok), float(v["logprob"])) for tok, v in entry.items()), key=lambda x: -x[1])
                for slot, (tok, value) in enumerate(top[: self.k]):
                    ids[r, t, slot], lps[r, t, slot] = tok, value
        return ids.to(device), lps.to(device), None


def probe_scoring(teacher: HttpTeacherConfig) -> str | None:
    """Why the server at ``teacher.api_base`` cannot score given tokens, or None when it can."""
    try:
        ServedTeacher(teacher, k=1, timeout=30.0).score([[0, 0]], 1)
    except urllib.error.HTTPError as exc:
        return f"{teacher.api_base} answered HTTP {exc.code} to a prompt_logprobs request"
    except (OSError, ValueError) as exc:
        return f"{teacher.api_base} could not score tokens ({exc})"
    return None
