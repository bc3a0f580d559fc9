"""Reading task data: the three file formats, public dataset layouts, field mappings, bad rows."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from stillhouse.kernel.data import load_split
from stillhouse.kernel.errors import DataError
from stillhouse.kernel.interfaces import TaskType
from stillhouse.plugins.tasks import ConversationTask, MathTask, NLITask, QATask, SummarizationTask

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "data"
SHARED_DATA = Path(os.environ.get("STILLHOUSE_SHARED_DATA", Path(__file__).resolve().parents[4] / "shared" / "data"))


def write_jsonl(path: Path, rows: list[dict | str]) -> Path:
    path.write_text(
        "".join((row if isinstance(row, str) else json.dumps(row)) + "\n" for row in rows), encoding="utf-8"
    )
    return path


# -- fixtures in every format ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("task", "file", "rows"),
    [
        (NLITask, "nli.jsonl", 24),
        (NLITask, "nli.csv", 24),
        (NLITask, "nli.parquet", 24),
        (QATask, "qa.jsonl", 24),
        (QATask, "qa.parquet", 24),
        (MathTask, "math.jsonl", 24),
        (SummarizationTask, "summarization.jsonl", 20),
        (ConversationTask, "conversation.jsonl", 20),
    ],
)
def test_fixture_loads(task: type[TaskType], file: str, rows: int) -> None:
    loaded = load_split(task(), FIXTURES / file, "train")
    assert len(loaded.examples) == rows
    assert loaded.skipped == 0
    assert all(ex.reference is not None for ex in loaded.examples)
    assert len({ex.id for ex in loaded.examples}) == rows
    assert loaded.examples[0].source.startswith(str(FIXTURES / file) + ":")


def test_nli_three_formats_agree() -> None:
    """JSONL (premise/hypothesis/label), CSV with the original SNLI columns and Parquet give the
    same examples."""
    task = NLITask()
    loaded = {fmt: load_split(task, FIXTURES / f"nli.{fmt}", "test").examples for fmt in ("jsonl", "csv", "parquet")}
    for fmt in ("csv", "parquet"):
        assert [ex.id for ex in loaded[fmt]] == [ex.id for ex in loaded["jsonl"]]
        assert [ex.reference for ex in loaded[fmt]] == [ex.reference for ex in loaded["jsonl"]]
        assert [ex.inputs["premise"] for ex in loaded[fmt]] == [ex.inputs["premise"] for ex in loaded["jsonl"]]
    labels = {ex.reference for ex in loaded["jsonl"]}
    assert labels == {"entailment", "neutral", "contradiction"}
    # e-SNLI explanations are kept for few-shot rationales; the CSV has none.
    assert all(ex.inputs.get("explanation") for ex in loaded["jsonl"])
    assert "explanation" not in loaded["csv"][0].inputs
    # CSV line numbers count the header: the first data row is line 2.
    assert loaded["csv"][0].source.endswith("nli.csv:2")


def test_qa_parquet_nested_answers_match_jsonl() -> None:
    jsonl = load_split(QATask(), FIXTURES / "qa.jsonl", "test").examples
    parquet = load_split(QATask(), FIXTURES / "qa.parquet", "test").examples
    assert [ex.reference for ex in parquet] == [ex.reference for ex in jsonl]
    assert all(isinstance(ex.reference, list) and all(isinstance(a, str) for a in ex.reference) for ex in jsonl)


def test_gsm8k_reference_is_the_number_and_rationale_is_kept() -> None:
    examples = load_split(MathTask(), FIXTURES / "math.jsonl", "train").examples
    raw = [json.loads(line) for line in (FIXTURES / "math.jsonl").read_text().splitlines()]
    for example, row in zip(examples, raw, strict=True):
        final = row["answer"].rsplit("####", 1)[1].strip()
        assert example.reference == final.replace(",", "")
        assert "<<" not in example.inputs["explanation"] and "####" not in example.inputs["explanation"]
    assert any("," in row["answer"].rsplit("####", 1)[1] for row in raw)  # the fixture has 1,080-style answers
    first = examples[0].inputs["explanation"]
    assert first.startswith("If 5,000 square feet represents one-quarter")


def test_dialogsum_and_topicalchat_layouts() -> None:
    summary = load_split(SummarizationTask(), FIXTURES / "summarization.jsonl", "train").examples[0]
    assert summary.id.startswith("dev_")  # DialogSum's fname
    assert summary.inputs["document"].startswith("#Person1#:")

    rows = [json.loads(line) for line in (FIXTURES / "conversation.jsonl").read_text().splitlines()]
    conversations = load_split(ConversationTask(), FIXTURES / "conversation.jsonl", "train").examples
    for example, row in zip(conversations, rows, strict=True):
        assert example.id == row["conversation_id"]
        assert example.reference == row["turns"][-1]["text"].strip()
        assert [t["speaker"] for t in example.inputs["turns"]] == [t["speaker"] for t in row["turns"][:-1]]
        assert example.inputs["next_speaker"] == row["turns"][-1]["speaker"]


# -- layouts and mappings ------------------------------------------------------------------------


def test_nli_integer_and_inflected_labels(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "mnli.jsonl",
        [
            {"premise": "A man sleeps.", "hypothesis": "A person rests.", "label": 0},
            {"premise": "A man sleeps.", "hypothesis": "A man dreams.", "label": 1},
            {"premise": "A man sleeps.", "hypothesis": "A man runs.", "label": 2},
            {"premise": "A man sleeps.", "hypothesis": "A man runs.", "label": "Contradiction"},
            {"premise": "A man sleeps.", "hypothesis": "Nobody sleeps."},
        ],
    )
    examples = load_split(NLITask(), path, "train").examples
    assert [ex.reference for ex in examples] == ["entailment", "neutral", "contradiction", "contradiction", None]


def test_snli_no_consensus_label_is_an_error_with_a_hint(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "snli.jsonl", [{"sentence1": "A dog.", "sentence2": "An animal.", "gold_label": "-"}])
    with pytest.raises(DataError) as info:
        load_split(NLITask(), path, "train")
    assert info.value.where.line == 1 and info.value.where.field == "label"
    assert "on_bad_rows" in (info.value.hint or "")
    loaded = load_split(NLITask(), path, "train", on_bad_rows="skip")
    assert loaded.skipped == 1 and loaded.examples == []


def test_fields_mapping_from_config(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "custom.jsonl", [{"passage_text": "Paris is in France.", "ask": "Where is Paris?", "gold": "France"}]
    )
    mapping = {"context": "passage_text", "question": "ask", "answers": "gold"}
    [example] = load_split(QATask(), path, "train", mapping=mapping).examples
    assert example.inputs == {"context": "Paris is in France.", "question": "Where is Paris?"}
    assert example.reference == ["France"]


def test_qa_answer_layouts(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "qa.jsonl",
        [
            {"context": "c", "question": "q", "answers": {"text": ["A", "B"], "answer_start": [0, 3]}},
            {"context": "c", "question": "q", "answers": [{"text": "A", "answer_start": 0}]},
            {"context": "c", "question": "q", "answer": "A"},
            {"context": "c", "question": "q", "answers": {"text": [], "answer_start": []}},  # SQuAD 2.0 no-answer
        ],
    )
    assert [ex.reference for ex in load_split(QATask(), path, "train").examples] == [["A", "B"], ["A"], ["A"], None]


def test_conversation_turn_layouts(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "chat.jsonl",
        [
            {
                "messages": [
                    {"role": "user", "content": "Hi!"},
                    {"role": "assistant", "content": "Hello, how can I help?"},
                ]
            },
            {"dialog": ["How are you?", "Fine, thanks.", "Great to hear."]},
            {"conversations": [], "history": "Alice: Any plans?\nBob: A hike.", "response": "Sounds fun!"},
        ],
    )
    first, second, third = load_split(ConversationTask(), path, "train").examples
    assert first.inputs["turns"] == [{"speaker": "user", "text": "Hi!"}]
    assert first.reference == "Hello, how can I help?" and first.inputs["next_speaker"] == "assistant"
    assert [t["speaker"] for t in second.inputs["turns"]] == ["A", "B"] and second.reference == "Great to hear."
    assert third.inputs["turns"] == [{"speaker": "Alice", "text": "Any plans?"}, {"speaker": "Bob", "text": "A hike."}]
    assert third.reference == "Sounds fun!" and third.inputs["next_speaker"] == "Alice"


def test_summaries_may_be_several_references(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "s.jsonl", [{"dialogue": "A: hi\nB: hello", "summary": ["They greet.", "A and B say hi."]}]
    )
    [example] = load_split(SummarizationTask(), path, "test").examples
    assert example.reference == ["They greet.", "A and B say hi."]


# -- bad rows ----------------------------------------------------------------------------------


BAD_ROWS = [
    {"premise": "A dog runs.", "hypothesis": "An animal moves.", "label": "entailment"},
    '{"premise": "A cat sleeps.", "hypothesis": "A cat',
    {"premise": "A bird sings.", "label": "neutral"},
    {"premise": "A fish swims.", "hypothesis": 42, "label": "neutral"},
    {"premise": "A man cooks.", "hypothesis": "Someone makes food.", "label": "entailment"},
]


@pytest.mark.parametrize(
    ("rows", "line", "field", "words"),
    [
        (BAD_ROWS[:2], 2, None, "invalid JSON"),
        ([BAD_ROWS[0], BAD_ROWS[2]], 2, "hypothesis", "missing field 'hypothesis'"),
        ([BAD_ROWS[0], BAD_ROWS[4], BAD_ROWS[3]], 3, "hypothesis", "should be str, got int"),
    ],
    ids=["invalid-json", "missing-field", "wrong-type"],
)
def test_bad_row_error_names_file_line_and_field(
    tmp_path: Path, rows: list, line: int, field: str | None, words: str
) -> None:
    path = write_jsonl(tmp_path / "bad.jsonl", rows)
    with pytest.raises(DataError) as info:
        load_split(NLITask(), path, "train")
    error = info.value
    assert error.where.file == str(path)
    assert error.where.line == line
    assert error.where.field == field
    assert words in error.what
    rendered = error.render()
    assert f"{path}:{line}" in rendered


def test_bad_rows_skipped_and_counted(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "bad.jsonl", BAD_ROWS)
    loaded = load_split(NLITask(), path, "train", on_bad_rows="skip")
    assert [ex.inputs["premise"] for ex in loaded.examples] == ["A dog runs.", "A man cooks."]
    assert loaded.skipped == 3
    assert len(loaded.problems) == 3
    assert loaded.problems[0].startswith(f"{path}:2")
    assert "field 'hypothesis'" in loaded.problems[1] and f"{path}:3" in loaded.problems[1]
    assert f"{path}:4" in loaded.problems[2]


def test_task_specific_bad_values(tmp_path: Path) -> None:
    gsm = write_jsonl(tmp_path / "gsm.jsonl", [{"question": "How many?", "answer": "Some apples.\n#### many"}])
    with pytest.raises(DataError) as info:
        load_split(MathTask(), gsm, "train")
    assert (info.value.where.line, info.value.where.field) == (1, "answer")

    chat = write_jsonl(tmp_path / "chat.jsonl", [{"turns": [{"speaker": "a", "text": "hi"}, {"speaker": "b"}]}])
    with pytest.raises(DataError) as info:
        load_split(ConversationTask(), chat, "train")
    assert (info.value.where.line, info.value.where.field) == (1, "turns[1]")

    short = write_jsonl(tmp_path / "short.jsonl", [{"turns": [{"speaker": "a", "text": "hi"}]}])
    with pytest.raises(DataError, match="at least 2 turns"):
        load_split(ConversationTask(), short, "train")
    unlabelled = ConversationTask(ConversationTask.Config(reply_from_last_turn=False))
    [example] = load_split(unlabelled, short, "train").examples
    assert example.reference is None and example.inputs["turns"] == [{"speaker": "a", "text": "hi"}]


# -- the full public files -----------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.skipif(not SHARED_DATA.is_dir(), reason=f"shared data folder {SHARED_DATA} is absent")
@pytest.mark.parametrize(
    ("task", "rel", "rows"),
    [
        (NLITask, "nli/snli_dev.jsonl", 9842),
        (QATask, "squad/squad_v1.1_dev.jsonl", 10570),
        (MathTask, "gsm8k/train.jsonl", 7473),
        (SummarizationTask, "summarization/dialogsum.dev.jsonl", 500),
        (ConversationTask, "dialogue/topicalchat_valid_freq.jsonl", 539),
    ],
)
def test_full_public_files_load(task: type[TaskType], rel: str, rows: int) -> None:
    instance = task()
    loaded = load_split(instance, SHARED_DATA / rel, "train")
    assert loaded.skipped == 0
    assert len(loaded.examples) == rows
    assert all(ex.reference is not None for ex in loaded.examples)
    # Every row renders into a prompt, and its gold answer, as a model would write it, parses
    # back to the same answer and passes verification (but one DialogSum summary that the data
    # itself cuts off mid-word: dialogsum.dev.jsonl:226).
    rejected = []
    for example in loaded.examples:
        assert instance.teacher_messages(example)[-1]["content"]
        gold = instance.demo_answer(example)
        parsed = instance.parse(gold)
        assert parsed.ok, (example.source, gold, parsed.error)
        expected = example.reference if isinstance(instance, MathTask) else gold
        assert instance.answer_key(parsed.answer) == instance.answer_key(expected), example.source
        written = instance.format_output(gold, example.inputs.get("explanation") or "See the text.")
        verdict = instance.verify(example, instance.parse(written if instance.needs_rationale else gold))
        if not verdict.accepted:
            rejected.append((example.source.rsplit("/", 1)[1], verdict.reason))
    assert rejected == ([("dialogsum.dev.jsonl:226", "truncated")] if rel.startswith("summarization") else [])


def test_blank_csv_cells_are_missing_references(tmp_path: Path) -> None:
    # A CSV mixing labelled and unlabelled rows: the blank label is "no reference", not a label "".
    path = tmp_path / "mixed.csv"
    path.write_text("premise,hypothesis,label\nA dog runs.,An animal moves.,entailment\nA cat naps.,A cat rests.,\n")
    assert [ex.reference for ex in load_split(NLITask(), path, "train").examples] == ["entailment", None]
    blank = tmp_path / "blank.csv"
    blank.write_text("premise,hypothesis,label\nA dog runs.,  ,entailment\n")
    with pytest.raises(DataError, match="missing field 'hypothesis'"):
        load_split(NLITask(), blank, "train")
