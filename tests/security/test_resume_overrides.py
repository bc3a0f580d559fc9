"""`still run --resume RUN_ID --set k=v` with no config file: applied to the run's stored config
where the stage that reads it has not finished, refused with exit 2 naming the key otherwise;
never silently ignored (it once trained 1 epoch when 12 were asked)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stillhouse.kernel.runs import Run, read_jsonl
from stillhouse.testing.oracle import Oracle
from tests.security.helpers import FIXTURE, nli_rows, only_run, write_config

ENV = {"SEC_TEACHER_CRED": "test-key-123456"}


def last_started_config(run_dir: Path) -> dict:
    return [e for e in read_jsonl(run_dir / "events.jsonl") if e["type"] == "run_started"][-1]["config"]


@pytest.mark.slow  # seven in-process resumes: ~20 s here
def test_resume_overrides_apply_where_safe_and_are_refused_by_name(tmp_path: Path, run_still, stillhouse_home: Path, fake_server) -> None:
    # an oracle teacher that is always right, so the filter accepts what the tests resume past
    server = fake_server(oracle=Oracle(FIXTURE, "nli", p=1.0))
    config = write_config(tmp_path, server.url, nli_rows(4), extra="")
    assert run_still("run", str(config), "--stage", "generate", env=ENV).exit_code == 0
    run_dir = only_run(stillhouse_home)
    run_id = run_dir.name

    applied = run_still("run", "--resume", run_id, "--stage", "filter", "--set", "train.num_epochs=12", "--set", "evaluate.limit=2", env=ENV)
    assert applied.exit_code == 0, applied.output
    stored = json.loads((run_dir / "config.json").read_text())
    assert stored["train"]["num_epochs"] == 12 and stored["evaluate"]["limit"] == 2
    assert last_started_config(run_dir)["train"]["num_epochs"] == 12  # what the pipeline ran with
    assert "train.num_epochs = 12" in (run_dir / "config.toml").read_text() or "num_epochs = 12" in (run_dir / "config.toml").read_text()

    for assignment, why in (
        ("teacher.temperature=0.5", "generate stage already finished"),
        ("data.limit=2", "generate stage already finished"),
        ("train.num_epochs=abc", "num_epochs"),  # safe key, invalid value: a validation error names it
        ("nonsense.key=1", "not a setting"),
    ):
        refused = run_still("run", "--resume", run_id, "--stage", "filter", "--set", assignment, env=ENV)
        assert refused.exit_code == 2, (assignment, refused.output)
        assert assignment.split("=")[0] in refused.output and why in refused.output, refused.output
    assert json.loads((run_dir / "config.json").read_text()) == stored  # a refused override changes nothing

    # Once a training checkpoint exists, only what a resumed checkpoint honours can change.
    (run_dir / "checkpoints").mkdir()
    refused = run_still("run", "--resume", run_id, "--stage", "filter", "--set", "train.learning_rate=1e-3", env=ENV)
    assert refused.exit_code == 2 and "train.learning_rate" in refused.output and "checkpoint" in refused.output
    ok = run_still("run", "--resume", run_id, "--stage", "filter", "--set", "train.num_epochs=3", env=ENV)
    assert ok.exit_code == 0, ok.output

    # After the train stage finished, its settings are fixed.
    Run.open(run_id).emit("stage_finished", stage="train", summary={}, seconds=1.0)
    refused = run_still("run", "--resume", run_id, "--stage", "filter", "--set", "train.num_epochs=5", env=ENV)
    assert refused.exit_code == 2 and "train stage already finished" in refused.output
