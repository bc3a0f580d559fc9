"""``still eval``: one model alone on a task's data, recorded as an evaluation run in the registry."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from stillhouse.kernel.runs import list_runs

FIXTURE = Path(__file__).parents[2] / "fixtures" / "data" / "nli.jsonl"


@pytest.fixture
def still(make_host):
    from stillhouse.kernel.cli import build_cli

    group = build_cli(make_host())  # every installed plugin: tasks, students, evaluators, registry
    return lambda *args: CliRunner().invoke(group, [str(a) for a in args])


@pytest.mark.slow
def test_eval_records_an_evaluation_run(still, stillhouse_home, tiny_model_dir):
    from stillhouse.registry.db import read_query

    model = f"hf/{tiny_model_dir}"
    result = still(
        "eval",
        "--model",
        model,
        "--task",
        "nli",
        "--data",
        FIXTURE,
        "--limit",
        6,
        "--batch-size",
        3,
        "--max-new-tokens",
        8,
        "--name",
        "tiny-nli",
    )
    assert result.exit_code == 0, result.output
    assert "accuracy" in result.output and "report.md" in result.output
    (run,) = list_runs(stillhouse_home)
    events = list(run.events())
    started = events[0]
    assert started["type"] == "run_started" and started["kind"] == "eval"
    assert started["task"] == "nli" and started["teacher_model"] is None and started["student_model"] == model
    assert events[-1]["type"] == "run_finished" and events[-1]["status"] == "completed"
    evals = {e["metric"]: e for e in events if e["type"] == "eval"}
    assert evals["accuracy"]["role"] == "model" and evals["accuracy"]["n"] == 6
    assert evals["parameters"]["value"] > 0 and evals["latency_p50_ms"]["value"] > 0
    assert evals["cost_per_1k_requests_usd"]["value"] is None  # local, no --usd-per-hour: not priced, not $0
    samples = [json.loads(line) for line in run.path("eval", "model.jsonl").read_text().splitlines()]
    assert len(samples) == 6 and {s["role"] for s in samples} == {"model"}
    results = json.loads(run.path("eval", "results.json").read_text())
    assert results["model"]["info"]["batch_size"] == 3
    assert "| model |" in run.path("report.md").read_text()

    runs = read_query("SELECT kind, task, student_model, teacher_model, status FROM runs", home=stillhouse_home)
    assert runs.rows == [("eval", "nli", model, None, "completed")]
    rows = read_query(
        "SELECT role, value, n FROM evals WHERE run_id = ? AND metric = 'accuracy'", [run.id], home=stillhouse_home
    )
    assert rows.rows == [("model", evals["accuracy"]["value"], 6)]


def test_eval_of_a_missing_data_file(still, stillhouse_home, tiny_model_dir, tmp_path):
    result = still("eval", "--model", f"hf/{tiny_model_dir}", "--task", "nli", "--data", tmp_path / "nope.jsonl")
    assert result.exit_code == 2 and "data file not found" in result.output
    assert list_runs(stillhouse_home) == []  # nothing recorded for a call that could not start


def test_eval_of_an_unknown_task(still, stillhouse_home, tiny_model_dir):
    result = still("eval", "--model", f"hf/{tiny_model_dir}", "--task", "nly", "--data", FIXTURE)
    assert result.exit_code == 2 and "did you mean 'nli'" in result.output


def test_eval_hints_its_own_flag_for_compute_price():
    """`still eval` has no config file: the cost hint names --usd-per-hour, not evaluate.usd_per_hour."""
    from stillhouse.kernel.interfaces import Metric
    from stillhouse.plugins.eval_command.evaluate import _own_flag_hint

    metric = _own_flag_hint(Metric("cost_usd_total", None, reason="local model: compute not priced (set evaluate.usd_per_hour)"))
    assert metric.reason == "local model: compute not priced (pass --usd-per-hour)"
    assert _own_flag_hint(Metric("accuracy", 0.5)).reason is None


def test_eval_whose_model_cannot_load_is_recorded_failed(still, stillhouse_home, tmp_path):
    """The run lifecycle records the failure: the stage and the run, with the error the user sees."""
    result = still("eval", "--model", f"hf/{tmp_path / 'no-such-model'}", "--task", "nli", "--data", FIXTURE)
    assert result.exit_code == 2 and "cannot load tokenizer" in result.output
    (run,) = list_runs(stillhouse_home)
    events = list(run.events())
    assert [e["type"] for e in events] == ["run_started", "stage_started", "stage_failed", "run_finished"]
    assert events[2]["stage"] == "evaluate" and "cannot load tokenizer" in events[2]["error"]
    assert events[-1]["status"] == "failed" and events[-1]["error"] == events[2]["error"]


@pytest.mark.parametrize("form", ["folder", "hf"])
def test_eval_reads_hugging_face_datasets(still, stillhouse_home, fake_server, tmp_path, monkeypatch, form):
    """--data takes a save_to_disk folder or an hf: source, as a pipeline's [data] does (the split
    defaults to test; ?split= picks another); an API model answers over real HTTP."""
    datasets = pytest.importorskip("datasets")
    rows = [json.loads(line) for line in FIXTURE.read_text().splitlines()]
    datasets.DatasetDict(
        {"test": datasets.Dataset.from_list(rows[:3]), "validation": datasets.Dataset.from_list(rows[3:5])}
    ).save_to_disk(str(tmp_path / "snli"))
    monkeypatch.chdir(tmp_path)
    server = fake_server(model_ids=("fake-teacher",))
    data = tmp_path / "snli" if form == "folder" else "hf:snli?split=validation"
    result = still("eval", "--model", "openai/fake-teacher", "--api-base", server.url, "--task", "nli", "--data", data)
    assert result.exit_code == 0, result.output
    (run,) = list_runs(stillhouse_home)
    evals = {e["metric"]: e for e in run.events() if e["type"] == "eval"}
    assert evals["accuracy"]["n"] == (3 if form == "folder" else 2)
    stored = json.loads(run.path("config.json").read_text())["data"]["test"]
    assert stored == (str(tmp_path / "snli") if form == "folder" else f"hf:{tmp_path / 'snli'}?split=validation")
    asked = set(server.stats.seen)
    assert any(rows[3]["premise"] in prompt for prompt in asked) == (form == "hf")


def test_eval_of_a_missing_hf_split(still, stillhouse_home, tmp_path, monkeypatch):
    datasets = pytest.importorskip("datasets")
    one = datasets.Dataset.from_list([json.loads(FIXTURE.read_text().splitlines()[0])])
    datasets.DatasetDict({"test": one}).save_to_disk(str(tmp_path / "one"))
    monkeypatch.chdir(tmp_path)
    result = still("eval", "--model", "openai/x", "--api-base", "http://127.0.0.1:9/v1", "--task", "nli", "--data", "hf:one?split=nope")
    assert result.exit_code == 2 and "nope" in result.output, result.output
    assert list_runs(stillhouse_home) == []  # refused before any model call or run folder
