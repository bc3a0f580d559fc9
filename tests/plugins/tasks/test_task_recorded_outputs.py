"""The filter on real teacher outputs, recorded from SmolLM2-135M-Instruct (Q4_1 GGUF, greedy,
through ``still run --stage generate --stage filter`` on the first rows of each public file).

A 135M model is a poor teacher, which is the point: its failures are the ones filters must catch
(solutions cut off with no final answer, sentences instead of spans, the dialogue re-enacted
instead of summarised, loops, speaking for the wrong agent). Each expected reason below was
checked by reading the output.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stillhouse.kernel.interfaces import TaskType
from stillhouse.plugins.tasks import BUILTIN_TASKS

RECORDED = Path(__file__).resolve().parents[2] / "fixtures" / "data" / "smollm2_teacher_outputs.jsonl"
TASKS: dict[str, type[TaskType]] = {cls.name: cls for cls in BUILTIN_TASKS}

EXPECTED = {
    # GSM8K: long-winded solutions cut at max_tokens end on some number, not an answer ...
    "gsm8k/train.jsonl:1": "no_final_answer",
    "gsm8k/train.jsonl:2": "no_final_answer",
    "gsm8k/train.jsonl:3": "no_final_answer",
    # ... and those that do conclude ("The answer is 1.", "So the answer is 100%") are wrong.
    "gsm8k/train.jsonl:4": "answer_mismatch",
    "gsm8k/train.jsonl:5": "no_final_answer",
    "gsm8k/train.jsonl:6": "answer_mismatch",
    "gsm8k/train.jsonl:7": "no_final_answer",
    "gsm8k/train.jsonl:8": "no_final_answer",
    # SNLI: every output restates the question ("whether the premise entails ...") and is cut off
    # before concluding; no label may be read from that.
    "nli/snli_dev.jsonl:1": "unparseable",
    "nli/snli_dev.jsonl:2": "unparseable",
    "nli/snli_dev.jsonl:3": "unparseable",
    "nli/snli_dev.jsonl:4": "unparseable",
    "nli/snli_dev.jsonl:5": "unparseable",
    "nli/snli_dev.jsonl:6": "unparseable",
    # SQuAD: the context recited, or a sentence instead of a span.
    "squad/squad_v1.1_dev.jsonl:1": "too_long",
    "squad/squad_v1.1_dev.jsonl:2": "not_in_context",
    "squad/squad_v1.1_dev.jsonl:3": "too_long",
    "squad/squad_v1.1_dev.jsonl:4": "not_in_context",
    "squad/squad_v1.1_dev.jsonl:5": "too_long",
    "squad/squad_v1.1_dev.jsonl:6": "not_in_context",
    # DialogSum: the dialogue copied, re-enacted, or looped instead of summarised.
    "summarization/dialogsum.dev.jsonl:1": "copied_context",
    "summarization/dialogsum.dev.jsonl:2": "not_a_summary",
    "summarization/dialogsum.dev.jsonl:3": "repetitive",
    "summarization/dialogsum.dev.jsonl:4": "copied_context",
    "summarization/dialogsum.dev.jsonl:5": "repetitive",
    "summarization/dialogsum.dev.jsonl:6": "repetitive",
    # Topical-Chat: "I'm a football fan. I'm. a football fan.", agent_1 speaking for agent_2, a
    # loop, the opening turn repeated; two replies pass, one of them empty meta-talk ("The
    # conversation continues ...") that no rule here can tell from a reply.
    "dialogue/topicalchat_valid_freq.jsonl:1": "repetitive",
    "dialogue/topicalchat_valid_freq.jsonl:2": "wrong_speaker",
    "dialogue/topicalchat_valid_freq.jsonl:3": "repetitive",
    "dialogue/topicalchat_valid_freq.jsonl:4": "ok",
    "dialogue/topicalchat_valid_freq.jsonl:5": "copied_context",
    "dialogue/topicalchat_valid_freq.jsonl:6": "ok",
}


def recorded() -> list[dict]:
    return [json.loads(line) for line in RECORDED.read_text(encoding="utf-8").splitlines()]


@pytest.mark.parametrize("record", recorded(), ids=lambda r: r["source"])
def test_filter_verdict_on_a_recorded_output(record: dict) -> None:
    task = TASKS[record["task"]]()
    example = task.example_from_row(record["row"], split="train", index=0, source=record["source"])
    parsed = task.parse(record["output"])
    verdict = task.verify(example, parsed)
    assert verdict.reason == EXPECTED[record["source"]], (parsed.answer, parsed.error)
    if verdict.accepted:
        [pair] = task.student_targets(example, parsed)
        assert pair.target == parsed.answer and "Agent_1:" not in pair.target


def test_every_task_scores_the_recorded_outputs() -> None:
    by_task: dict[str, list[dict]] = {}
    for record in recorded():
        by_task.setdefault(record["task"], []).append(record)
    assert set(by_task) == set(TASKS)
    for name, records in by_task.items():
        task = TASKS[name]()
        examples = [
            task.example_from_row(r["row"], split="test", index=i, source=r["source"]) for i, r in enumerate(records)
        ]
        parsed = [task.parse(r["output"]) for r in records]
        scores = {m.name: m for m in task.score(examples, parsed)}
        primary = scores[task.primary_metric]
        assert primary.n == len(records) and primary.value is not None and 0.0 <= primary.value <= 1.0
        if name in ("nli", "math"):
            assert primary.value == 0.0  # nothing readable / nothing right: a 0 that was measured
