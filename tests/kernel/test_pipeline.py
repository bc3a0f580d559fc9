"""The orchestrator end to end with test plugins: stages, outputs, resume, hooks, errors."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from stillhouse.kernel.cli import build_cli
from stillhouse.kernel.config import load_config
from stillhouse.kernel.pipeline import Pipeline
from stillhouse.kernel.runs import Run, read_jsonl
from tests.kernel import fakes


def run_cli(host, *args):
    return CliRunner().invoke(build_cli(host), list(args), catch_exceptions=False)


def test_full_run_produces_every_stage_output(fake_host, pipeline_config):
    loaded = load_config(pipeline_config(), fake_host)
    pipeline = Pipeline.create(loaded, fake_host)
    assert pipeline.execute() == "completed"
    run = pipeline.run
    assert set(run.finished_stages()) == {"generate", "filter", "train", "evaluate", "report"}

    samples = {s["sample_id"]: s for s in read_jsonl(run.path("samples.jsonl"))}
    assert samples["t0"]["accepted"] and samples["t0"]["targets"][0]["target"] == "blue"
    assert samples["t3"]["reason"] == "label_mismatch"
    assert samples["t4"]["reason"] == "forbidden_word"  # the filter_sample hook overruled the task
    assert samples["v0"]["split"] == "validation"

    results = json.loads(run.path("eval", "results.json").read_text())
    assert results["teacher"]["metrics"][0]["value"] == 1.0
    assert results["baseline"]["metrics"][0]["value"] == 0.0  # the untrained memoriser knows nothing
    assert results["student"]["metrics"][0]["value"] == 1.0
    assert "student: accuracy=1.0" in run.path("report.txt").read_text()
    events = list(run.events())
    assert events[0]["type"] == "run_started" and events[-1] == {**events[-1], "type": "run_finished", "status": "completed"}
    assert sum(1 for e in events if e["type"] == "teacher_call") == 7
    assert json.loads(run.path("config.json").read_text())["data"]["train"].endswith("data/train.jsonl")


def test_lifecycle_and_filter_hooks_are_called(fake_host, pipeline_config):
    Pipeline.create(load_config(pipeline_config(), fake_host), fake_host).execute()
    names = [name for name, _ in fakes.HOOK_CALLS]
    assert names[0] == "run_started" and names[-1] == "run_finished"
    assert [arg for name, arg in fakes.HOOK_CALLS if name == "stage_finished"] == ["generate", "filter", "train", "evaluate", "report"]
    assert {arg for name, arg in fakes.HOOK_CALLS if name == "filter_sample"} == {"t0", "t1", "t2", "t3", "t4", "t5", "v0"}


def test_resume_skips_finished_stages_and_continues_training(fake_host, pipeline_config):
    loaded = load_config(pipeline_config(), fake_host)
    pipeline = Pipeline.create(loaded, fake_host)
    fakes.MemorisingStudent.stop_after = 2  # Ctrl-C in the middle of training
    assert pipeline.execute() == "interrupted"
    assert set(pipeline.run.finished_stages()) == {"generate", "filter"}
    calls_before = sum(v for k, v in fakes.CALLS.items() if k != "train")

    resumed = Pipeline(loaded, fake_host, Run.open(pipeline.run.id))
    assert resumed.execute(resume=True) == "completed"
    assert sum(v for k, v in fakes.CALLS.items() if k != "train") == calls_before + 3  # only evaluation prompts
    skipped = [e["message"] for e in resumed.run.events() if e["type"] == "log"]
    assert any("generate already finished" in m for m in skipped) and any("filter already finished" in m for m in skipped)
    losses = [e for e in resumed.run.events() if e.get("key") == "train/loss"]
    assert len(losses) == 4  # 2 before the interruption + 2 after: nothing learnt twice


def test_failed_teacher_calls_are_retried_on_resume(fake_host, pipeline_config):
    loaded = load_config(pipeline_config(teacher_extra='fail_once = ["t1"]'), fake_host)
    pipeline = Pipeline.create(loaded, fake_host)
    pipeline.execute(["generate"])
    summary = pipeline.run.finished_stages()["generate"]
    assert summary["failed"] == 1 and summary["incomplete"] is True

    resumed = Pipeline(loaded, fake_host, Run.open(pipeline.run.id))
    resumed.execute(["generate", "filter"], resume=True)
    assert fakes.CALLS["t1"] == 2 and fakes.CALLS["t0"] == 1  # only the failure was asked again
    samples = {s["sample_id"]: s for s in read_jsonl(resumed.run.path("samples.jsonl"))}
    assert samples["t1"]["accepted"]


def test_stage_option_runs_only_that_stage_and_explains_missing_inputs(fake_host, pipeline_config):
    result = run_cli(fake_host, "run", str(pipeline_config()), "--stage", "train")
    assert result.exit_code == 1
    assert "no filtered samples to train on" in result.output and "Traceback" not in result.output


def test_filter_that_accepts_nothing_stops_training_with_a_reason(fake_host, pipeline_config, tmp_path):
    (tmp_path / "data" / "train.jsonl").write_text('{"text": "night is dark", "label": "black"}\n')
    pipeline = Pipeline.create(load_config(pipeline_config(), fake_host), fake_host)
    with pytest.raises(Exception, match="accepted no training samples"):
        pipeline.execute()
    assert pipeline.run.status() == "failed"


def test_cli_run_prints_run_id_and_resumes(fake_host, pipeline_config):
    result = run_cli(fake_host, "run", str(pipeline_config()))
    assert result.exit_code == 0, result.output
    run_id = result.output.split()[1]
    assert "completed" in result.output
    again = run_cli(fake_host, "run", "--resume", run_id)
    assert again.exit_code == 0 and "already finished" in again.output


def test_dry_run_calls_nothing(fake_host, pipeline_config, stillhouse_home):
    result = run_cli(fake_host, "run", str(pipeline_config(teacher_extra="price_per_call = 0.5")), "--dry-run")
    assert result.exit_code == 0, result.output
    assert "dry run: 7 prompts" in result.output and "$3.5000" in result.output
    assert not fakes.CALLS and not (stillhouse_home / "runs").exists()


def test_budget_stops_generation_and_keeps_answers(fake_host, pipeline_config):
    loaded = load_config(pipeline_config(teacher_extra="price_per_call = 1.0\nbudget_usd = 3.0"), fake_host)
    pipeline = Pipeline.create(loaded, fake_host)
    with pytest.raises(Exception, match="budget"):
        pipeline.execute()
    assert len(list(read_jsonl(pipeline.run.path("teacher", "outputs.jsonl")))) == 3


def test_registration_and_command_hooks(fake_host):
    assert fake_host.names("task") == ["echo"] and fake_host.names("loss") == ["sft", "weighted"]
    assert fake_host.names("teacher") == ["scripted"] and fake_host.names("student") == ["memorise"]
    assert fake_host.names("evaluator") == ["task_metrics"] and fake_host.names("reporter") == ["text"]
    assert run_cli(fake_host, "fake-hello").output == "hello from a plugin\n"


def test_reject_reasons_use_the_task_code_and_truncation(fake_host, pipeline_config):
    loaded = load_config(pipeline_config(teacher_extra='blank = { t0 = "length", t1 = "stop" }'), fake_host)
    pipeline = Pipeline.create(loaded, fake_host)
    pipeline.execute(["generate", "filter"])
    samples = {s["sample_id"]: s for s in read_jsonl(pipeline.run.path("samples.jsonl"))}
    assert samples["t0"]["reason"] == "truncated" and samples["t0"]["finish_reason"] == "length"
    assert samples["t1"]["reason"] == "empty"  # EchoTask.parse's own code
    reasons = pipeline.run.finished_stages()["filter"]["reasons"]
    assert reasons["truncated"] == 1 and reasons["empty"] == 1 and reasons["ok"] == 3


def test_resumed_run_spends_only_the_budget_left(fake_host, pipeline_config):
    loaded = load_config(pipeline_config(teacher_extra="price_per_call = 1.0\nbudget_usd = 3.0"), fake_host)
    pipeline = Pipeline.create(loaded, fake_host)
    with pytest.raises(Exception, match="budget"):
        pipeline.execute()
    resumed = Pipeline(loaded, fake_host, Run.open(pipeline.run.id))
    with pytest.raises(Exception, match="budget"):
        resumed.execute(resume=True)
    assert len(list(read_jsonl(pipeline.run.path("teacher", "outputs.jsonl")))) == 3  # nothing more was bought


def test_append_after_a_torn_line_starts_a_new_line(tmp_path):
    from stillhouse.kernel.runs import append_jsonl

    path = tmp_path / "out.jsonl"
    path.write_text('{"a": 1}\n{"b": ')  # a kill in the middle of a write
    append_jsonl(path, [{"c": 3}])
    assert list(read_jsonl(path)) == [{"a": 1}, {"c": 3}]
