"""RunFolder: every file of a run folder at one path, read and written as typed records."""

from __future__ import annotations

import json
from pathlib import Path

from stillhouse.kernel.interfaces import Completion, Metric, TeacherResult, TokenLogprob
from stillhouse.kernel.run_folder import RunFolder, SampleRecord
from stillhouse.kernel.runs import Run


def test_the_paths_are_the_documented_layout(tmp_path: Path) -> None:
    folder = RunFolder(tmp_path)
    rel = {
        name: getattr(folder, name).relative_to(tmp_path).as_posix()
        for name in (
            "config_json",
            "config_toml",
            "events_path",
            "teacher_outputs",
            "samples_path",
            "checkpoints",
            "student",
            "eval_dir",
            "results_path",
            "lock_path",
        )
    }
    assert rel == {
        "config_json": "config.json",
        "config_toml": "config.toml",
        "events_path": "events.jsonl",
        "teacher_outputs": "teacher/outputs.jsonl",
        "samples_path": "samples.jsonl",
        "checkpoints": "checkpoints",
        "student": "student",
        "eval_dir": "eval",
        "results_path": "eval/results.json",
        "lock_path": "run.lock",
    }
    assert folder.eval_outputs_path("teacher") == tmp_path / "eval" / "teacher.jsonl"


def test_a_run_and_its_folder_agree(tmp_path: Path) -> None:
    run = Run.create("x", {}, home=tmp_path)
    assert run.folder == RunFolder(run.dir)
    assert run.events_path == run.folder.events_path
    assert not run.folder.is_run()
    run.emit("run_started", name="x")
    assert run.folder.is_run()


def test_teacher_results_round_trip_typed(tmp_path: Path) -> None:
    folder = RunFolder(tmp_path)
    tokens = [TokenLogprob("a", -0.1, [("a", -0.1), ("b", -2.0)]), TokenLogprob("!", -0.3)]
    first = TeacherResult("s1", "m", error="rate limited")
    retried = TeacherResult("s1", "m", [Completion("a!", "stop", tokens)], cache_key="k", cost_usd=0.25)
    other = TeacherResult("s2", "m", [Completion("b", None, None)], cache_hit=True)
    for result, split in ((first, "train"), (retried, "train"), (other, "validation")):
        folder.append_teacher_result(result, split)
    stored = list(folder.teacher_results())
    assert [r.sample_id for r in stored] == ["s1", "s1", "s2"]
    latest = folder.latest_teacher_results()
    assert latest["s1"].ok and latest["s1"].split == "train" and latest["s2"].split == "validation"
    assert latest["s1"].completions == [Completion("a!", "stop", tokens)]  # tuples of alternatives, not lists
    assert latest["s1"].cost_usd == 0.25 and latest["s2"].cache_hit
    assert isinstance(latest["s1"], TeacherResult)


def test_a_stored_teacher_line_with_unknown_or_missing_keys_still_reads(tmp_path: Path) -> None:
    folder = RunFolder(tmp_path)
    folder.teacher_outputs.parent.mkdir()
    folder.teacher_outputs.write_text(
        json.dumps({"sample_id": "a", "newer_field": 1, "completions": [{"text": "x"}]}) + "\n"
    )
    (result,) = folder.teacher_results()
    assert result.sample_id == "a" and result.model == "" and result.completions == [Completion("x")]


def test_samples_round_trip_redacted(tmp_path: Path) -> None:
    folder = RunFolder(tmp_path)
    record = SampleRecord(
        sample_id="a",
        split="train",
        accepted=False,
        reason="wrong",
        teacher_output="key sk-abcdefghijklmnopqrstuvwxyz0123456789",
        targets=[],
    )
    folder.write_samples([record])
    (back,) = folder.samples()
    assert back["reason"] == "wrong" and "sk-abcdefghijklmnopqrstuvwxyz0123456789" not in str(back["teacher_output"])


def test_eval_results_round_trip_as_metrics(tmp_path: Path) -> None:
    folder = RunFolder(tmp_path)
    assert folder.read_results() == {} and folder.read_metrics() == {}
    metric = Metric("accuracy", 0.5, n=10, higher_is_better=True)
    folder.write_results({"student": {"model": "m", "info": {}, "metrics": [vars(metric)]}})
    assert folder.read_metrics() == {"student": [metric]}
    assert folder.read_models() == {"student": "m"}


def test_half_written_results_read_as_none_yet(tmp_path: Path) -> None:
    folder = RunFolder(tmp_path)
    folder.eval_dir.mkdir()
    folder.results_path.write_text('{"student": {"mod')
    assert folder.read_results() == {}


def test_eval_outputs_are_found_by_role(tmp_path: Path) -> None:
    folder = RunFolder(tmp_path)
    assert folder.eval_output_files() == []
    folder.eval_dir.mkdir()
    for role in ("teacher", "baseline"):
        folder.eval_outputs_path(role).write_text(json.dumps({"sample_id": role}) + "\n")
    folder.results_path.write_text("{}")
    assert [p.stem for p in folder.eval_output_files()] == ["baseline", "teacher"]
    assert list(folder.eval_outputs("teacher")) == [{"sample_id": "teacher"}]


def test_config_round_trip(tmp_path: Path) -> None:
    folder = RunFolder(tmp_path)
    assert folder.read_config() == {}
    folder.write_config({"task": "nli"}, 'task = "nli"\n')
    assert folder.read_config() == {"task": "nli"}
    assert folder.config_toml.read_text() == 'task = "nli"\n'
