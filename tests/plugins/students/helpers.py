"""Real NLI and GSM8K rows (tests/fixtures/data) as TrainPairs, and an event recorder."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from stillhouse.kernel.interfaces import TrainPair

DATA = Path(__file__).parents[2] / "fixtures" / "data"


def nli_pairs(n: int, start: int = 0) -> list[TrainPair]:
    rows = [json.loads(line) for line in (DATA / "nli.jsonl").read_text().splitlines()][start : start + n]
    return [
        TrainPair(
            row["id"],
            [
                {"role": "system", "content": "Classify the pair."},
                {"role": "user", "content": f"Premise: {row['premise']}\nHypothesis: {row['hypothesis']}"},
            ],
            f"{row['explanation']} Answer: {row['label']}",
        )
        for row in rows
    ]


def math_pairs(n: int) -> list[TrainPair]:
    rows = [json.loads(line) for line in (DATA / "math.jsonl").read_text().splitlines()][:n]
    return [
        TrainPair(f"gsm-{i}", [{"role": "user", "content": r["question"]}], r["answer"]) for i, r in enumerate(rows)
    ]


class Events(list):
    def of(self, type_: str, key: str | None = None) -> list[dict[str, Any]]:
        return [e for e in self if e["type"] == type_ and (key is None or e.get("key") == key)]


def batch_loss(model: Any, samples: list, loss: Any, store: Any = None) -> float:
    """The loss of ``model`` on ``samples`` in one packed batch (what training minimises)."""
    import torch

    from stillhouse.kernel.interfaces import LossInputs
    from stillhouse.plugins.students.batching import Collator

    items = [{**s.as_item(), "topk_offset": store.offset(s) if store else -1} for s in samples]
    batch = Collator(pad_id=0, max_length=4096, packing=True, store=store)(items)
    with torch.no_grad():
        logits = model(input_ids=batch["input_ids"], position_ids=batch["position_ids"], use_cache=False).logits
    inputs = LossInputs(
        logits=logits,
        labels=batch["target_ids"],
        teacher_ids=batch.get("teacher_ids"),
        teacher_logprobs=batch.get("teacher_logprobs"),
    )
    return float(loss(inputs))
