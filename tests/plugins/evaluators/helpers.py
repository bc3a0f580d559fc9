"""Test helpers: a real tiny model as a ChatModel (over hf_models.generate_chat) and a small label
task, so the evaluators are exercised on genuine generations, timings and token counts."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from stillhouse.kernel.interfaces import (
    Answer,
    ChatModel,
    EvalSubject,
    Example,
    FieldSpec,
    Message,
    Metric,
    Parsed,
    TaskType,
    TrainPair,
    Verdict,
)

LABELS = ("entailment", "neutral", "contradiction")


class LabelTask(TaskType):
    """Answer = one of three labels named in the output; accuracy against the gold label."""

    name = "label-test"
    primary_metric = "accuracy"
    fields = (FieldSpec("text"), FieldSpec("label", reference=True))

    def teacher_messages(self, example: Example, few_shot: Sequence[Example] = ()) -> list[Message]:
        return self.student_messages(example)

    def student_messages(self, example: Example) -> list[Message]:
        return [{"role": "user", "content": f"{example.inputs['text']} Answer:"}]

    def parse(self, text: str) -> Parsed:
        found = [label for label in LABELS if label in text.lower()]
        return Parsed(answer=found[-1], text=text) if found else Parsed(error="no label", text=text)

    def verify(self, example: Example, parsed: Parsed) -> Verdict:
        return Verdict(parsed.answer == example.reference)

    def student_targets(self, example: Example, parsed: Parsed) -> list[TrainPair]:
        return [TrainPair(example.id, self.student_messages(example), str(parsed.answer))]

    def score(self, examples: Sequence[Example], predictions: Sequence[Parsed]) -> list[Metric]:
        right = sum(1 for e, p in zip(examples, predictions, strict=True) if p.answer == e.reference)
        return [Metric("accuracy", right / len(examples))]  # n left unset on purpose: the evaluator fills it


class TinyChatModel(ChatModel):
    """A local transformers model answering in left-padded batches; records each call's batch size."""

    def __init__(self, model_dir: Path) -> None:
        from stillhouse.plugins.hf_models import load_causal_lm

        self.dir = model_dir
        self.model, self.tokenizer = load_causal_lm(str(model_dir), dtype="float32", device="cpu")
        self.calls: list[tuple[int, int]] = []

    def answer(self, prompts: Sequence[list[Message]], *, max_new_tokens: int, batch_size: int) -> list[Answer]:
        from stillhouse.plugins.hf_models import generate_chat

        self.calls.append((len(prompts), batch_size))
        outputs = generate_chat(
            self.model, self.tokenizer, list(prompts), max_new_tokens=max_new_tokens, batch_size=batch_size
        )
        return [Answer(o.text, o.latency_ms, o.prompt_tokens, o.completion_tokens) for o in outputs]

    def footprint(self) -> dict[str, Any]:
        from stillhouse.plugins.hf_models import count_parameters, folder_bytes

        return {"parameters": count_parameters(self.model), "bytes_on_disk": folder_bytes(str(self.dir))}


def examples(count: int = 6) -> list[Example]:
    texts = [
        "A man plays a guitar.",
        "Two dogs sleep.",
        "A woman reads.",
        "Kids run outside.",
        "It rains.",
        "A cat eats.",
    ]
    return [
        Example(f"e{i}", "test", {"text": texts[i % len(texts)]}, LABELS[i % 3], f"test.jsonl:{i + 1}")
        for i in range(count)
    ]


def answer_subject(
    model: ChatModel, task: TaskType, rows: list[Example], *, role: str = "student", **info: Any
) -> EvalSubject:
    """Answer ``rows`` batched and time the pass, as the evaluate stage does."""
    prompts = [task.student_messages(e) for e in rows]
    start = time.perf_counter()
    answers = model.answer(prompts, max_new_tokens=info.get("max_new_tokens", 8), batch_size=info.get("batch_size", 4))
    wall = time.perf_counter() - start
    parsed = [task.parse(a.text) for a in answers]
    return EvalSubject(role, "tiny", model, task, rows, answers, parsed, {"answer_wall_s": wall, **info})
