"""Several references per row (issue 12 item 6): the DialogSum test layout (``summary1..3``),
SQuAD ``answers`` lists and a generic ``references`` list load as several references and are
scored against all of them; an evaluation split with no reference at all is an error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stillhouse.kernel.config import to_toml
from stillhouse.kernel.data import load_split
from stillhouse.kernel.errors import DataError
from stillhouse.kernel.interfaces import Parsed
from stillhouse.plugins.tasks import ConversationTask, QATask, SummarizationTask

DIALOGSUM_TEST = Path(__file__).resolve().parents[2] / "fixtures" / "data" / "summarization_test.jsonl"


def by_name(metrics: list) -> dict[str, float]:
    return {m.name: m.value for m in metrics}


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_dialogsum_test_layout_loads_three_summaries_in_order() -> None:
    task = SummarizationTask(SummarizationTask.Config())
    loaded = load_split(task, DIALOGSUM_TEST, "test", for_evaluation=True)
    rows = [json.loads(line) for line in DIALOGSUM_TEST.read_text().splitlines()]
    assert [e.id for e in loaded.examples] == [r["fname"] for r in rows]
    for example, row in zip(loaded.examples, rows, strict=True):
        assert example.reference == [row["summary1"], row["summary2"], row["summary3"]]
        assert example.inputs["document"] == row["dialogue"]


def test_rouge_scores_each_sample_against_its_best_summary() -> None:
    task = SummarizationTask(SummarizationTask.Config())
    examples = load_split(task, DIALOGSUM_TEST, "test").examples
    second = [Parsed(answer=e.reference[1]) for e in examples]  # each equals the 2nd annotator's summary
    scores = by_name(task.score(examples, second))
    assert scores["rouge_l"] == pytest.approx(1.0) and scores["rouge1"] == pytest.approx(1.0)
    first_only = load_split(task, DIALOGSUM_TEST, "test").examples
    for example in first_only:
        example.reference = example.reference[:1]
    assert by_name(task.score(first_only, second))["rouge_l"] < 0.7  # against summary1 alone it is not perfect


def test_generic_references_list_and_numbered_columns(tmp_path: Path) -> None:
    rows = [
        {"id": "a", "dialogue": "A: hi\nB: hello", "references": ["They greet.", "A and B say hello."]},
        {"id": "b", "text": "Some text here.", "summary_1": "First.", "summary_2": "", "summary_10": "Tenth."},
    ]
    task = SummarizationTask(SummarizationTask.Config())
    loaded = load_split(task, write_jsonl(tmp_path / "t.jsonl", rows), "test", for_evaluation=True)
    assert [e.reference for e in loaded.examples] == [["They greet.", "A and B say hello."], ["First.", "Tenth."]]


def test_conversation_scores_bleu_and_chrf_against_every_reference(tmp_path: Path) -> None:
    turns = [{"speaker": "A", "text": "Do you like jazz?"}, {"speaker": "B", "text": "I do, very much."}]
    rows = [{"id": "c", "turns": turns, "references": ["Who is your favourite player?", "Miles Davis is my hero."]}]
    task = ConversationTask(ConversationTask.Config())
    examples = load_split(task, write_jsonl(tmp_path / "c.jsonl", rows), "test").examples
    assert examples[0].reference == rows[0]["references"]
    assert len(examples[0].inputs["turns"]) == 2  # the reply comes from references, not the last turn
    scores = by_name(task.score(examples, [Parsed(answer="Miles Davis is my hero.")]))
    assert scores["bleu"] == pytest.approx(1.0) and scores["chrf"] == pytest.approx(1.0)


def test_squad_answers_score_the_best_of_all_answers(tmp_path: Path) -> None:
    rows = [
        {"id": "q", "context": "Denver Broncos won Super Bowl 50.", "question": "Who won?",
         "answers": {"text": ["Denver Broncos", "the Broncos", "Broncos"], "answer_start": [0, 0, 7]}},
        {"id": "r", "context": "It was in 2016.", "question": "When?", "references": ["2016", "in 2016"]},
    ]
    task = QATask(QATask.Config())
    examples = load_split(task, write_jsonl(tmp_path / "q.jsonl", rows), "test").examples
    assert examples[0].reference == ["Denver Broncos", "the Broncos", "Broncos"]
    assert examples[1].reference == ["2016", "in 2016"]
    scores = by_name(task.score(examples, [Parsed(answer="Broncos"), Parsed(answer="in 2016")]))
    assert scores["exact_match"] == 1.0 and scores["f1"] == 1.0


def test_evaluation_split_without_references_is_an_error(tmp_path: Path) -> None:
    rows = [{"fname": "x", "dialogue": "A: hi\nB: hello", "summaryA": "They greet."}]
    task = SummarizationTask(SummarizationTask.Config())
    path = write_jsonl(tmp_path / "test.jsonl", rows)
    assert len(load_split(task, path, "validation").examples) == 1  # not scored: fine without references
    with pytest.raises(DataError) as info:
        load_split(task, path, "test", for_evaluation=True)
    message = info.value.render()
    assert str(path) in message and "no row has a reference" in message
    assert "'summary'" not in message and "summary, highlights" in message and "summary1..N" in message


def test_test_file_without_references_fails_at_generate_through_the_cli(run_still, tmp_path, stillhouse_home) -> None:
    data = tmp_path / "data"
    data.mkdir()
    rows = [json.loads(line) for line in DIALOGSUM_TEST.read_text().splitlines()]
    write_jsonl(data / "train.jsonl", rows)
    write_jsonl(data / "test.jsonl", [{"fname": r["fname"], "dialogue": r["dialogue"]} for r in rows])
    config = {
        "task": "summarization",
        "data": {"train": "data/train.jsonl", "test": "data/test.jsonl"},
        "teacher": {"model": "openai/unused", "api_base": "http://127.0.0.1:9/v1"},
        "student": {"model": "unused"},
    }
    (tmp_path / "p.toml").write_text(to_toml(config))
    result = run_still("run", str(tmp_path / "p.toml"), "--dry-run")
    assert result.exit_code == 2, result.output
    assert "test.jsonl" in result.output and "no row has a reference" in result.output
    assert "Traceback" not in result.output
