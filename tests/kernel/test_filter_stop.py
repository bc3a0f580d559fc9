"""The filter stage stops a run that accepted no training sample, and warns when few survive."""

from __future__ import annotations

import json

from click.testing import CliRunner

from stillhouse.kernel.cli import build_cli
from stillhouse.kernel.config import load_config
from stillhouse.kernel.pipeline import Pipeline
from stillhouse.kernel.runs import Run, read_jsonl
from tests.kernel import fakes


def write_train(tmp_path, rows):
    (tmp_path / "data" / "train.jsonl").write_text("".join(json.dumps({"id": i, "text": t, "label": lab}) + "\n" for i, t, lab in rows))


def test_no_accepted_sample_stops_at_the_filter_with_reasons_examples_and_fixes(fake_host, pipeline_config, tmp_path):
    # the teacher answers the last word: every label disagrees, and t2's answer is cut off
    write_train(tmp_path, [("t0", "night is dark", "black"), ("t1", "sky is grey", "blue"), ("t2", "snow is cold", "white")])
    config = pipeline_config(teacher_extra='blank = { t2 = "length" }')
    result = CliRunner().invoke(build_cli(fake_host), ["run", str(config)], catch_exceptions=False)
    assert result.exit_code == 1
    out = " ".join(result.output.split())
    assert "accepted no training samples (0 of 3)" in out
    # what was measured against what, then the answer itself
    assert "label_mismatch (2 of 3), e.g. t0 (teacher said dark, reference is black): \"dark\"" in out and "truncated (1 of 3)" in out
    assert "raise teacher.max_tokens" in out and "stronger teacher" in out
    assert fakes.CALLS["train"] == 0  # stopped before the train stage

    run_id = result.output.split()[1]
    run = Run.open(run_id)
    assert run.status() == "failed" and "filter" not in run.finished_stages()
    failed = [e for e in run.events() if e["type"] == "stage_failed"]
    assert [e["stage"] for e in failed] == ["filter"]
    samples = {s["sample_id"]: s for s in read_jsonl(run.path("samples.jsonl"))}
    assert len(samples) == 4  # kept for inspection (3 train + 1 validation)
    assert samples["t0"]["detail"] == "teacher said dark, reference is black" and samples["t2"]["reason"] == "truncated"

    # resumable: once the data (or a filter rule) changes, --resume filters again and goes on
    write_train(tmp_path, [("t0", "night is dark", "dark"), ("t1", "sky is grey", "grey"), ("t2", "snow is cold", "cold")])
    resumed = Pipeline(load_config(config, fake_host), fake_host, Run.open(run_id))
    assert resumed.execute(resume=True) == "completed"


def test_low_acceptance_is_a_visible_warning(fake_host, pipeline_config, tmp_path):
    rows = [("t0", "sky is blue", "blue")] + [(f"t{i}", f"item {i} is dark", "black") for i in range(1, 7)]
    write_train(tmp_path, rows)
    result = CliRunner().invoke(build_cli(fake_host), ["run", str(pipeline_config())], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    out = " ".join(result.output.split())
    assert "warning: low acceptance: the filter accepted 1 of 7 training samples (14%)" in out
    assert "label_mismatch (6 of 7)" in out
    run = Run.open(result.output.split()[1])
    warnings = [e for e in run.events() if e["type"] == "log" and e.get("level") == "warning"]
    assert len(warnings) == 1


def test_a_fair_acceptance_gives_no_warning(fake_host, pipeline_config):
    pipeline = Pipeline.create(load_config(pipeline_config(), fake_host), fake_host)
    pipeline.execute(["generate", "filter"])
    assert not [e for e in pipeline.run.events() if e["type"] == "log" and e.get("level") == "warning"]
