"""Prompts, few-shot demos, rationale modes, student targets, verification and task options."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from stillhouse.kernel.config import pipeline_model
from stillhouse.kernel.data import load_split
from stillhouse.kernel.interfaces import Example, Parsed, TaskType
from stillhouse.plugins.tasks import BUILTIN_TASKS, ConversationTask, MathTask, NLITask, QATask, SummarizationTask
from stillhouse.plugins.tasks.common import LABEL_PREFIX, RATIONALE_PREFIX

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "data"
FILES = {
    "nli": "nli.jsonl",
    "qa": "qa.jsonl",
    "math": "math.jsonl",
    "summarization": "summarization.jsonl",
    "conversation": "conversation.jsonl",
}


def examples(task: TaskType) -> list[Example]:
    return load_split(task, FIXTURES / FILES[task.name], "train").examples


# -- teacher prompts --------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", BUILTIN_TASKS, ids=lambda c: c.name)
def test_teacher_prompt_is_system_then_user(cls: type[TaskType]) -> None:
    task = cls()
    example = examples(task)[0]
    messages = task.teacher_messages(example)
    assert [m["role"] for m in messages] == ["system", "user"]
    assert messages[0]["content"].startswith(task.instruction)
    assert messages[1]["content"].startswith(task.render_input(example))
    assert messages[1]["content"] == task.render_request(example)
    if task.closing_instruction:  # restated after the input, where small models look
        assert messages[1]["content"].endswith("\n\n" + task.closing_instruction)
    if task.config.ask_rationale:
        assert '"Reasoning:"' in messages[0]["content"] and f'"{task.answer_label}:"' in messages[0]["content"]


def test_prompts_show_the_inputs_with_labels() -> None:
    nli = NLITask()
    example = examples(nli)[0]
    assert nli.teacher_messages(example)[1]["content"] == (
        f"Premise: {example.inputs['premise']}\nHypothesis: {example.inputs['hypothesis']}"
    )
    assert "one of: entailment, neutral, contradiction" in nli.teacher_messages(example)[0]["content"]
    chat = ConversationTask()
    conversation = examples(chat)[0]
    user = chat.teacher_messages(conversation)[1]["content"]
    first = conversation.inputs["turns"][0]
    assert user.splitlines()[1] == f"{first['speaker']}: {first['text']}"
    assert conversation.reference not in user.splitlines()[-1]
    assert f"as {conversation.inputs['next_speaker']}" in chat.teacher_messages(conversation)[0]["content"]
    assert ConversationTask(ConversationTask.Config(max_context_turns=2)).render_input(conversation).count("\n") == 2


def test_system_prompt_option_replaces_the_instruction() -> None:
    task = QATask(QATask.Config(system_prompt="You answer trivia about Warsaw."))
    system = task.teacher_messages(examples(task)[0])[0]["content"]
    assert system.startswith("You answer trivia about Warsaw.")
    assert task.instruction not in system


def test_few_shot_demos_come_from_the_pool_with_gold_rationales() -> None:
    task = MathTask(MathTask.Config(few_shot=2))
    pool = examples(task)
    target = pool[5]
    messages = task.teacher_messages(target, pool)
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user", "assistant", "user"]
    assert messages[-1]["content"] == task.render_input(target)
    demo_ids = {ex.id for ex in pool if task.render_input(ex) in (messages[1]["content"], messages[3]["content"])}
    assert len(demo_ids) == 2 and target.id not in demo_ids
    for reply in (messages[2]["content"], messages[4]["content"]):
        assert reply.startswith("Reasoning: ")
        assert "<<" not in reply  # GSM8K calculator annotations are gone
        demo = next(ex for ex in pool if ex.id in demo_ids and reply.endswith(f"Answer: {ex.reference}"))
        assert task.parse(reply).answer == demo.reference  # demos are in the format parse() reads
    # Stable for one example, varied across examples.
    assert task.teacher_messages(target, pool) == messages
    choices = {tuple(m["content"] for m in task.teacher_messages(ex, pool)[1:5:2]) for ex in pool}
    assert len(choices) > 5


def test_few_shot_without_reasoning_shows_bare_answers_and_skips_unlabelled_rows() -> None:
    task = NLITask(NLITask.Config(few_shot=3, ask_rationale=False))
    pool = examples(task)[:3] + [Example("unlabelled", "train", {"premise": "p", "hypothesis": "h"}, None)]
    messages = task.teacher_messages(examples(task)[10], pool)
    assert [m["content"] for m in messages if m["role"] == "assistant"] == [ex.reference for ex in pool[:3]]
    assert "Give only the label" in messages[0]["content"]
    assert NLITask().teacher_messages(examples(task)[10], pool)[1]["role"] == "user"  # few_shot = 0: no demos
    assert len(NLITask().teacher_messages(examples(task)[10], pool)) == 2


# -- student prompts and targets ---------------------------------------------------------------------


def test_math_keeps_the_rationale_by_default() -> None:
    task = MathTask()
    example = examples(task)[0]
    parsed = task.parse("Reasoning: 5000 * 4 = 20000 on the second floor.\nAnswer: 55,000")
    [pair] = task.student_targets(example, parsed)
    assert pair.target == "Reasoning: 5000 * 4 = 20000 on the second floor.\nAnswer: 55000"
    assert pair.messages == task.student_messages(example)
    assert '"Reasoning:"' in pair.messages[0]["content"]
    assert task.parse(pair.target).answer == "55000"  # the student's output format parses back


def test_drop_mode_teaches_the_bare_answer() -> None:
    task = NLITask()  # nli drops the rationale by default
    example = examples(task)[0]
    parsed = task.parse("Reasoning: A cartwheel is not home repair.\nAnswer: contradiction")
    [pair] = task.student_targets(example, parsed)
    assert pair.target == "contradiction" and pair.weight == 1.0
    assert "Reasoning" not in pair.messages[0]["content"]
    assert task.parse(pair.target).answer == "contradiction"


def test_multitask_mode_trains_rationale_and_label_as_two_prefixed_targets() -> None:
    task = MathTask(MathTask.Config(rationale="multitask", rationale_weight=0.5))
    example = examples(task)[0]
    parsed = task.parse("Reasoning: The second floor holds 20000.\nAnswer: 55000")
    label, rationale = task.student_targets(example, parsed)
    assert label.target == "55000" and label.weight == 1.0
    assert label.messages[1]["content"].startswith(f"{LABEL_PREFIX} Question:")
    assert rationale.target == "The second floor holds 20000." and rationale.weight == 0.5
    assert rationale.messages[1]["content"].startswith(f"{RATIONALE_PREFIX} Question:")
    assert label.messages[0] == rationale.messages[0]  # one system prompt explains both prefixes
    assert task.student_messages(example) == label.messages  # inference uses the [label] prompt


@pytest.mark.parametrize("cls", BUILTIN_TASKS, ids=lambda c: c.name)
@pytest.mark.parametrize("mode", ["keep", "drop", "multitask"])
def test_every_target_parses_back_to_the_accepted_answer(cls: type[TaskType], mode: str) -> None:
    task = cls(cls.Config(rationale=mode, ask_rationale=True))
    for example in examples(task)[:5]:
        gold = task.demo_answer(example)
        parsed = task.parse(task.format_output(gold, "The text says so."))
        assert parsed.ok and parsed.rationale == "The text says so."
        pairs = task.student_targets(example, parsed)
        assert len(pairs) == (2 if mode == "multitask" else 1)
        answer_pair = pairs[0]
        assert task.answer_key(task.parse(answer_pair.target).answer) == task.answer_key(parsed.answer)
        assert all(p.sample_id == example.id for p in pairs)


# -- verification --------------------------------------------------------------------------------------


def verdict(task: TaskType, example: Example, output: str) -> str:
    v = task.verify(example, task.parse(output))
    assert v.accepted == (v.reason == "ok")
    return v.reason


def test_nli_verification() -> None:
    task = NLITask()
    example = examples(task)[0]  # contradiction
    assert verdict(task, example, "Reasoning: fixing a home is not a cartwheel.\nAnswer: contradiction") == "ok"
    assert verdict(task, example, "Answer: entailment") == "label_mismatch"
    assert verdict(task, example, "What a lovely beach.") == "unparseable"
    assert verdict(task, example, "") == "empty"
    unlabelled = Example("u", "train", example.inputs, None)
    assert verdict(task, unlabelled, "neutral") == "ok"  # nothing to check against
    keep = NLITask(NLITask.Config(rationale="keep"))
    assert verdict(keep, example, "contradiction") == "missing_rationale"
    assert verdict(keep, example, "The woman is on a beach, not at home.\nSo: contradiction") == "ok"


def test_qa_verification() -> None:
    task = QATask()
    example = Example(
        "q1",
        "train",
        {"context": "The 1973 oil crisis began in October 1973 when OAPEC proclaimed an embargo.", "question": "When?"},
        ["October 1973", "October 1973", "1973"],
    )
    assert verdict(task, example, "Answer: October 1973") == "ok"
    assert verdict(task, example, "in October 1973") == "ok"  # F1 0.8 >= 0.5
    assert verdict(task, example, "October") == "ok"  # F1 2/3 against "October 1973"
    assert verdict(task, example, "OAPEC") == "low_f1"
    assert verdict(task, example, "In the autumn") == "not_in_context"
    assert verdict(QATask(QATask.Config(f1_threshold=0.9)), example, "October") == "low_f1"
    assert verdict(QATask(QATask.Config(max_answer_words=3)), example, "when OAPEC proclaimed an embargo") == "too_long"
    assert verdict(QATask(QATask.Config(require_span=False)), example, "Oct. 1973") == "ok"


def test_math_verification() -> None:
    task = MathTask()
    example = examples(task)[0]  # 55000
    assert verdict(task, example, "Reasoning: 4 * 5000 = 20000; first floor 40000.\nAnswer: $55,000") == "ok"
    assert verdict(task, example, "Reasoning: doubled.\nAnswer: 60000") == "answer_mismatch"
    assert verdict(task, example, "Reasoning: unclear.") == "no_number"
    assert verdict(task, example, "55000") == "missing_rationale"  # keep mode trains on the rationale
    assert verdict(MathTask(MathTask.Config(rationale="drop")), example, "55000") == "ok"
    # A solution cut off mid-way ends on some number, not on a final answer.
    truncated = "First floor: 2 * 20000 = 40000. Second floor: 20000. Boxes use 5000, so 55000"
    assert verdict(task, example, truncated) == "no_final_answer"
    assert verdict(task, example, truncated + "\nThe answer is 55000.") == "ok"
    lenient = MathTask(MathTask.Config(require_final_answer=False))
    assert verdict(lenient, example, truncated) == "ok"


def test_summarization_verification() -> None:
    task = SummarizationTask()
    example = examples(task)[0]
    assert verdict(task, example, example.reference) == "ok"
    assert verdict(task, example, "Summary: Dogs.") == "too_short"
    assert verdict(task, example, " ".join(["word"] * 121)) == "too_long"
    # A real SmolLM2-135M "summary": the dialogue acted out again, in new words.
    reenacted = (
        "#Person1#: I hear there will be a dog park. #Person2#: What for? #Person1#: Dogs may not be in the "
        "streets. #Person2#: That sounds fair to me."
    )
    assert verdict(task, example, reenacted) == "not_a_summary"
    assert verdict(task, example, "#Person1# tells #Person2# about a new dog park in the city.") == "ok"
    cut = "#Person1# and #Person2# talk about the advantages and disadvantages of"
    assert verdict(task, example, cut) == "truncated"
    assert verdict(SummarizationTask(SummarizationTask.Config(require_complete=False)), example, cut) == "ok"
    copied = " ".join(example.inputs["document"].split()[:30])
    assert verdict(task, example, copied) == "copied_context"
    strict = SummarizationTask(SummarizationTask.Config(rouge_threshold=0.3))
    assert verdict(strict, example, example.reference) == "ok"
    assert verdict(strict, example, "The weather in Paris was sunny and warm all week long.") == "low_rouge"
    short = Example("s", "train", {"document": "A: Hi there, Bob.\nB: Hello, Alice."}, None)
    assert verdict(task, short, "Alice and Bob say hello to each other warmly.") == "too_long"  # longer than its source


def test_conversation_verification() -> None:
    task = ConversationTask()
    example = examples(task)[0]
    assert verdict(task, example, example.reference) == "ok"
    assert verdict(task, example, example.inputs["turns"][-1]["text"]) == "copied_context"
    assert verdict(task, example, "agent_1: " + example.inputs["turns"][1]["text"]) == "copied_context"
    assert verdict(task, example, " ".join(["really"] * 81)) == "too_long"
    assert verdict(task, example, "agent_1:") == "empty"
    # Real SmolLM2-135M replies: speaking for the wrong agent, and looping.
    speaker = example.inputs["next_speaker"]
    other = next(t["speaker"] for t in example.inputs["turns"] if t["speaker"] != speaker)
    assert verdict(task, example, f"{other.capitalize()}: I'm a football fan.") == "wrong_speaker"
    assert verdict(task, example, f"{speaker}: I'm a football fan.") == "ok"
    looping = (
        "I'm glad you enjoyed the conversation. I'm glad to hear about the NFL quarterback who is a genius. "
        "I'm glad to hear about the talent of the Patriots. I'm glad to hear about the talent of the Patriots"
    )
    assert verdict(task, example, looping) == "repetitive"


# -- options -----------------------------------------------------------------------------------------


def test_task_option_defaults() -> None:
    assert MathTask().config.rationale == "keep"
    assert NLITask().config.rationale == "drop" and QATask().config.rationale == "drop"
    assert SummarizationTask().config.ask_rationale is False and ConversationTask().config.ask_rationale is False
    assert QATask().config.f1_threshold == 0.5
    assert SummarizationTask().config.rouge_threshold is None


@pytest.mark.parametrize(
    ("task", "options", "where"),
    [
        (QATask, {"f1_threshold": 2}, ("task_options", "f1_threshold")),
        (QATask, {"f1_treshold": 0.5}, ("task_options", "f1_treshold")),
        (MathTask, {"rationale": "sometimes"}, ("task_options", "rationale")),
        (NLITask, {"labels": ["yes", "YES"]}, ("task_options", "labels")),
        (NLITask, {"synonyms": {"maybe": "unsure"}}, ("task_options", "synonyms")),
        (SummarizationTask, {"min_words": 0}, ("task_options", "min_words")),
    ],
)
def test_bad_task_options_are_rejected_in_a_pipeline_config(task: type[TaskType], options: dict, where: tuple) -> None:
    model = pipeline_model(task.Config)
    raw = {
        "task": task.name,
        "data": {"train": "train.jsonl"},
        "teacher": {"model": "openai/gpt-4o-mini"},
        "student": {"model": "some/student"},
        "task_options": options,
    }
    with pytest.raises(ValidationError) as info:
        model.model_validate(raw)
    assert info.value.errors()[0]["loc"][:2] == where
    del raw["task_options"]
    assert model.model_validate(raw).task_options == task.Config()


def test_custom_labels_read_integer_labels_in_their_order(tmp_path: Path) -> None:
    task = NLITask(NLITask.Config(labels=["Entailment", "Not_Entailment"]))
    path = tmp_path / "rte.jsonl"
    path.write_text(
        '{"sentence1": "A", "sentence2": "B", "label": 1}\n{"sentence1": "A", "sentence2": "B", "label": 0}\n'
    )
    assert [ex.reference for ex in load_split(task, path, "train").examples] == ["not_entailment", "entailment"]
    assert task.config.synonyms["yes"] == "entailment" and "no" not in task.config.synonyms


def test_unparsed_answer_never_becomes_a_target() -> None:
    # The filter only asks for targets of accepted answers; a rejected parse has no answer text.
    assert not Parsed(error="unparseable").ok
