"""The train stage of a run under torchrun with 2 CPU processes (gloo): one student, events once."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from stillhouse.kernel.config import load_config
from stillhouse.kernel.pipeline import Pipeline
from stillhouse.kernel.plugins import PluginHost
from stillhouse.kernel.runs import append_jsonl

FIXTURE = Path(__file__).parents[1] / "fixtures" / "data" / "nli.jsonl"


def accepted_sample(task, row: dict) -> dict:
    """What the filter stage writes for an accepted answer (here the gold label, as a perfect teacher's)."""
    example = task.example_from_row(row, split="train", index=0, source=f"{FIXTURE}:1")
    parsed = task.parse(f"Answer: {row['label']}")
    targets = task.student_targets(example, parsed)
    return {"sample_id": example.id, "split": "train", "accepted": True, "reason": "ok",
            "targets": [{"sample_id": t.sample_id, "messages": t.messages, "target": t.target, "weight": t.weight} for t in targets]}


@pytest.mark.slow
def test_torchrun_trains_the_student_of_a_run(tmp_path: Path, stillhouse_home: Path, tiny_model_dir: Path) -> None:
    shutil.copy(FIXTURE, tmp_path / "train.jsonl")
    config = tmp_path / "pipeline.toml"
    config.write_text(
        f'task = "nli"\n[data]\ntrain = "train.jsonl"\n[teacher]\nmodel = "openai/unused"\n'
        f'[student]\nmodel = "{tiny_model_dir}"\n[train]\nbatch_size = 4\nnum_epochs = 1\nlogging_steps = 1\n'
    )
    host = PluginHost()
    pipeline = Pipeline.create(load_config(config, host), host)
    rows = [json.loads(line) for line in FIXTURE.read_text().splitlines()]
    append_jsonl(pipeline.run.path("samples.jsonl"), [accepted_sample(pipeline.task, r) for r in rows])
    for stage in ("generate", "filter"):  # as if those stages had run
        pipeline.run.emit("stage_finished", stage=stage, summary={})

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "-m", "stillhouse.kernel.cli", "run", "--resume", pipeline.run.id, "--stage", "train", "--quiet"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    events = [json.loads(line) for line in pipeline.run.events_path.read_text().splitlines()]
    finished = [e for e in events if e["type"] == "stage_finished" and e["stage"] == "train"]
    assert len(finished) == 1  # reported by the main process only
    assert sum(1 for e in events if e["type"] == "run_started") == 1
    from transformers import AutoModelForCausalLM

    assert AutoModelForCausalLM.from_pretrained(pipeline.run.path("student")).config.num_hidden_layers == 2


def test_other_stages_refuse_to_run_under_torchrun(monkeypatch) -> None:
    from stillhouse.kernel.errors import ConfigError

    monkeypatch.setenv("WORLD_SIZE", "2")  # read when the run starts, as torchrun sets it
    with pytest.raises(ConfigError, match="only the train stage"):
        Pipeline.execute(object.__new__(Pipeline), ["generate"], resume=True)
