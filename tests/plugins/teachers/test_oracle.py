"""The oracle mode of the fake OpenAI server: right with probability p, in prose the task parsers read."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest

from stillhouse.kernel.data import load_split
from stillhouse.testing.fake_openai import FakeBehaviour, FakeOpenAIServer
from stillhouse.testing.oracle import Oracle, make_task

DATA = Path(__file__).resolve().parents[2] / "fixtures" / "data"


def asked(task_name: str, oracle: Oracle, index: int = 0):
    """(example, parsed oracle reply to the task's real teacher prompt) for every row of the file."""
    task = make_task(task_name)
    examples = load_split(task, oracle.path, "train").examples
    out = []
    for example in examples:
        messages = task.teacher_messages(example)
        reply = oracle.answer(messages[-1]["content"], index)
        out.append((example, task.parse(reply)))
    return task, out


@pytest.mark.parametrize("task_name", ["nli", "math", "qa"])
def test_answers_parse_and_are_right_as_often_as_p(task_name):
    oracle = Oracle(DATA / f"{task_name}.jsonl", task_name, p=0.7, seed=3)
    task = make_task(task_name)
    right = total = 0
    for index in range(20):  # 24 rows x 20 choices: 480 draws
        _, answers = asked(task_name, oracle, index)
        assert all(parsed.ok for _, parsed in answers)  # every reply parses with the task's own parser
        for example, parsed in answers:
            right += task.verify(example, parsed).accepted
            total += 1
    assert total == 480
    assert abs(right / total - 0.7) < 0.07  # binomial sd ~0.021


@pytest.mark.parametrize("task_name", ["nli", "math", "qa"])
def test_p_one_is_always_right_and_p_zero_plausibly_wrong(task_name):
    task, always = asked(task_name, Oracle(DATA / f"{task_name}.jsonl", task_name, p=1.0))
    assert all(task.verify(e, p).accepted for e, p in always)
    task, never = asked(task_name, Oracle(DATA / f"{task_name}.jsonl", task_name, p=0.0))
    verdicts = [task.verify(e, p) for e, p in never]
    assert not any(v.accepted for v in verdicts)
    # wrong, not garbage: another label, a nearby number, another span of the same context
    assert {v.reason for v in verdicts} == {{"nli": "label_mismatch", "math": "answer_mismatch", "qa": "low_f1"}[task_name]}
    if task_name == "qa":
        assert all(p.answer.lower() in e.inputs["context"].lower() for e, p in never)
    if task_name == "math":
        assert all(abs(float(p.answer) - float(e.reference)) <= max(10.0, 10 * abs(float(e.reference))) for e, p in never)


def test_deterministic_per_prompt_and_seed():
    a = Oracle(DATA / "nli.jsonl", "nli", p=0.5, seed=1)
    b = Oracle(DATA / "nli.jsonl", "nli", p=0.5, seed=1)
    c = Oracle(DATA / "nli.jsonl", "nli", p=0.5, seed=2)
    prompts = [make_task("nli").render_input(e) for e in a.examples]
    assert [a.answer(p) for p in prompts] == [b.answer(p) for p in reversed(prompts)][::-1]
    assert [a.answer(p) for p in prompts] != [c.answer(p) for p in prompts]
    assert "Reasoning:" in a.answer(prompts[0]) and a.answer(prompts[0], reasoning=False).startswith("Answer: ")
    assert a.answer("a prompt about nothing in the file") is None


def test_the_server_answers_as_the_oracle_and_echoes_other_prompts():
    oracle = Oracle(DATA / "nli.jsonl", "nli", p=1.0)
    task = make_task("nli")
    example = oracle.examples[0]
    with FakeOpenAIServer(FakeBehaviour(oracle=oracle)) as server:

        def chat(messages):
            body = json.dumps({"model": "fake-teacher", "messages": messages}).encode()
            request = urllib.request.Request(server.url + "/chat/completions", body, {"Content-Type": "application/json"})
            with urllib.request.urlopen(request, timeout=10) as response:
                return json.loads(response.read())["choices"][0]["message"]["content"]

        reply = chat(task.teacher_messages(example))
        other = chat([{"role": "user", "content": "hello"}])
    assert task.parse(reply).answer == example.reference and reply.startswith("Reasoning:")
    assert other == "Answer: hello"
