"""The TUI's samples browser shows each teacher's answer side by side, the chosen one, and the judge."""

from __future__ import annotations

import json
from pathlib import Path

from stillhouse.tui.runfiles import load_samples
from stillhouse.tui.widgets.samples import detail


def test_the_sample_detail_lists_every_teacher_and_the_judge(tmp_path: Path) -> None:
    record = {
        "sample_id": "s1",
        "split": "train",
        "accepted": True,
        "reason": "ok",
        "prompt": [{"role": "user", "content": "Premise: a. Hypothesis: b."}],
        "teacher_output": "Answer: neutral",
        "parsed_answer": "neutral",
        "teacher": "strong",
        "teacher_answers": [
            {"teacher": "cheap", "answers": ["entailment", "neutral", None]},
            {"teacher": "strong", "answers": ["neutral"]},
        ],
        "judge_score": 8.0,
        "judge_reason": "the label follows",
    }
    (tmp_path / "samples.jsonl").write_text(json.dumps(record) + "\n")
    (view,) = load_samples(tmp_path)
    assert view.teachers == [("cheap", "entailment, neutral, ?"), ("strong", "neutral")]
    text = "\n".join(part.plain for part in detail(view).renderables)
    assert "  cheap: entailment, neutral" in text and "* strong: neutral" in text
    assert "8 - the label follows" in text

    record.pop("teacher_answers"), record.pop("judge_score")  # a one-teacher run shows neither section
    (tmp_path / "samples.jsonl").write_text(json.dumps(record) + "\n")
    plain = "\n".join(part.plain for part in detail(load_samples(tmp_path)[0]).renderables)
    assert "Teachers" not in plain and "Judge" not in plain
