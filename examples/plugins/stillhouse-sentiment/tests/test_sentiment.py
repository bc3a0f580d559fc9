"""Tests of the stillhouse-sentiment plugin, written as a plugin author would: with the fixtures of
the ``stillhouse.testing`` pytest plugin (make_host, run_still) and real torch tensors."""

import json

import pytest
import stillhouse_sentiment
import torch
import torch.nn.functional as F
from pydantic import ValidationError
from stillhouse_sentiment import DATA_DIR

from stillhouse.kernel.data import load_split
from stillhouse.kernel.errors import DataError
from stillhouse.kernel.interfaces import Example, Parsed
from stillhouse.plugins import losses as builtin_losses
from stillhouse.plugins.losses.inputs import LossInputs


@pytest.fixture
def host(make_host):
    return make_host(stillhouse_sentiment, builtin_losses, entry_points=False)


@pytest.fixture
def task(host):
    cls = host.get("task", "sentiment")
    return cls(cls.Config())


def gold(label, text="x"):
    return Example("e", "test", {"text": text}, reference=label)


# -- registration -----------------------------------------------------------------------------


def test_registers_a_task_and_a_loss(host, run_still):
    assert not host.failures
    assert host.source_of("task", "sentiment") == "stillhouse_sentiment"
    assert host.source_of("loss", "label_smoothed_sft") == "stillhouse_sentiment"
    listing = json.loads(run_still("plugins", "--json").output)
    (row,) = [r for r in listing["plugins"] if r["name"] == "stillhouse_sentiment"]
    assert row["provides"] == {"task": ["sentiment"], "loss": ["label_smoothed_sft"]}


# -- data -------------------------------------------------------------------------------------


def test_the_shipped_data_reads_as_balanced_examples(task):
    sizes = {}
    for split in ("train", "validation", "test"):
        loaded = load_split(task, DATA_DIR / f"{split}.jsonl", split)
        labels = [e.reference for e in loaded.examples]
        assert set(labels) == {"positive", "negative"} and labels.count("positive") == len(labels) / 2
        sizes[split] = len(labels)
    assert sizes == {"train": 40, "validation": 12, "test": 16}


@pytest.mark.parametrize(("value", "label"), [("Positive", "positive"), ("neg", "negative"), (1, "positive"), (0, "negative"), ("1", "positive")])
def test_gold_labels_in_common_encodings(task, value, label):
    example = task.example_from_row({"sentence": "fine", "polarity": value}, split="train", index=0, source="d.jsonl:3")
    assert example.inputs == {"text": "fine"} and example.reference == label


def test_an_unknown_gold_label_names_file_line_and_field(task):
    with pytest.raises(DataError) as caught:
        task.example_from_row({"text": "fine", "label": "4 stars"}, split="train", index=0, source="d.jsonl:7")
    where = caught.value.where
    assert (where.file, where.line, where.field) == ("d.jsonl", 7, "label")


# -- parsing and verification -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("output", "answer"),
    [
        ("Answer: positive", "positive"),
        ("**Answer:** Negative.", "negative"),
        ("Reasoning: the food was cold and the staff rude.\nAnswer: negative", "negative"),
        ("negative", "negative"),
        ("The review is positive.", "positive"),
        ("Some parts are negative, the service for one.\nOverall the verdict is positive.", "positive"),
        ("The sentiment is not negative; it is positive.", "positive"),
        ("Answer: favourable", "positive"),
    ],
)
def test_parses_the_label_from_model_output(task, output, answer):
    assert task.parse(output).answer == answer


@pytest.mark.parametrize(("output", "error"), [("", "empty"), ("I cannot tell.", "unparseable"), ("Could be positive or negative.", "ambiguous")])
def test_unreadable_output_is_an_error_not_a_guess(task, output, error):
    parsed = task.parse(output)
    assert not parsed.ok and parsed.error == error


def test_verifies_against_gold_and_keeps_the_rationale_only_when_asked(host, task):
    parsed = task.parse("Reasoning: praises the view.\nAnswer: positive")
    assert parsed.rationale == "praises the view."
    assert task.verify(gold("positive"), parsed).accepted
    assert task.verify(gold("negative"), parsed).reason == "label_mismatch"
    assert task.verify(gold("positive"), task.parse("hmm")).reason == "unparseable"
    assert task.verify(Example("e", "train", {"text": "x"}), parsed).accepted  # no gold: trust the teacher
    (pair,) = task.student_targets(gold("positive"), parsed)
    assert pair.target == "positive" and pair.messages[-1]["content"] == "Text: x"

    cls = host.get("task", "sentiment")
    keeping = cls(cls.Config(rationale="keep"))
    (pair,) = keeping.student_targets(gold("positive"), parsed)
    assert pair.target == "Reasoning: praises the view.\nAnswer: positive"
    assert keeping.verify(gold("positive"), keeping.parse("Answer: positive")).reason == "missing_rationale"


def test_prompts_carry_few_shot_demos_and_the_answer_format(task):
    shots = [gold("negative", "awful"), gold("positive", "lovely")]
    messages = task.teacher_messages(gold(None, "the cake was great"), shots)
    assert messages[0]["role"] == "system" and '"Answer: positive"' in messages[0]["content"]
    assert [m["content"] for m in messages[1:]] == ["Text: awful", "Answer: negative", "Text: lovely", "Answer: positive", "Text: the cake was great"]


def test_options_are_validated(host):
    cls = host.get("task", "sentiment")
    with pytest.raises(ValidationError):
        cls.Config(rationale="multitask")  # not offered by this task
    with pytest.raises(ValidationError):
        cls.Config(synonyms={"meh": "neutral"})
    with pytest.raises(ValidationError):
        cls.Config(synonym={"great": "positive"})


# -- scoring ----------------------------------------------------------------------------------


def test_accuracy_and_macro_f1(task):
    examples = [gold("positive"), gold("positive"), gold("negative"), gold("negative"), Example("u", "test", {"text": "x"})]
    predictions = [Parsed("positive"), Parsed("negative"), Parsed("negative"), Parsed(error="unparseable"), Parsed("positive")]
    metrics = {m.name: m for m in task.score(examples, predictions)}
    assert metrics["accuracy"].value == 0.5 and metrics["accuracy"].n == 4  # the unlabelled row is left out
    # positive: tp 1, fp 0, fn 1 -> F1 2/3; negative: tp 1, fp 1, fn 1 -> F1 1/2
    assert metrics["macro_f1"].value == pytest.approx((2 / 3 + 1 / 2) / 2)
    unmeasured = task.score([Example("u", "test", {"text": "x"})], [Parsed("positive")])
    assert all(m.value is None and m.reason for m in unmeasured)


# -- the loss ---------------------------------------------------------------------------------


def make_batch(requires_grad=False):
    torch.manual_seed(0)
    logits = torch.randn(2, 6, 13, requires_grad=requires_grad)
    labels = torch.randint(0, 13, (2, 6))
    labels[:, :2] = -100  # prompt positions
    return logits, labels


def smoothed(host, epsilon):
    cls = host.get("loss", "label_smoothed_sft")
    return cls(cls.Config(epsilon=epsilon))


@pytest.mark.parametrize("epsilon", [0.0, 0.1, 0.4])
def test_loss_matches_torch_and_the_builtin_sft(host, epsilon):
    logits, labels = make_batch()
    inputs = LossInputs(logits=logits, labels=labels)
    ours = smoothed(host, epsilon)(inputs)
    reference = F.cross_entropy(logits.reshape(-1, 13), labels.reshape(-1), ignore_index=-100, label_smoothing=epsilon)
    sft = host.get("loss", "sft")
    builtin = sft(sft.Config(label_smoothing=epsilon))(inputs)
    assert torch.allclose(ours, reference, atol=1e-6) and torch.allclose(ours, builtin, atol=1e-6)


def test_loss_honours_weights_and_the_trainers_token_count(host):
    logits, labels = make_batch()
    loss = smoothed(host, 0.1)
    base = loss(LossInputs(logits=logits, labels=labels))
    weights = torch.ones(2, 6)
    weights[1] = 3.0
    weighted = loss(LossInputs(logits=logits, labels=labels, weights=weights))
    per_row = [loss(LossInputs(logits=logits[i : i + 1], labels=labels[i : i + 1], num_items=8)) for i in range(2)]
    assert torch.allclose(weighted, per_row[0] + 3 * per_row[1])  # 8 target tokens in all
    assert torch.allclose(loss(LossInputs(logits=logits, labels=labels, num_items=16)), base / 2)


def test_loss_gradients_skip_prompt_positions(host):
    logits, labels = make_batch(requires_grad=True)
    smoothed(host, 0.1)(LossInputs(logits=logits, labels=labels)).backward()
    assert logits.grad[:, :2].abs().sum() == 0 and logits.grad[:, 2:].abs().sum() > 0
    empty = torch.full_like(labels, -100)
    assert smoothed(host, 0.1)(LossInputs(logits=logits, labels=empty)).item() == 0.0
