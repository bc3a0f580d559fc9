from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.kernel import fakes

ROWS = [
    ("the sky is blue", "blue"),
    ("grass is green", "green"),
    ("snow is white", "white"),
    ("night is dark", "black"),  # the teacher says "dark": rejected with label_mismatch
    ("this word is forbidden", "forbidden"),  # rejected by the filter_sample hook
    ("coal is black", "black"),
]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture
def fake_host(make_host):
    fakes.reset()
    return make_host(fakes, entry_points=False)


def write_fake_pipeline(folder: Path, extra: str = "", teacher_extra: str = "") -> Path:
    """Data files and a pipeline config that uses the fake plugins, written into ``folder``.
    The data is written once; later calls only rewrite the config."""
    data = folder / "data"
    if not data.exists():
        data.mkdir()
        write_jsonl(data / "train.jsonl", [{"id": f"t{i}", "text": t, "label": label} for i, (t, label) in enumerate(ROWS)])
        write_jsonl(data / "val.jsonl", [{"id": "v0", "text": "milk is white", "label": "white"}])
        write_jsonl(data / "test.jsonl", [{"id": f"e{i}", "text": t, "label": label} for i, (t, label) in enumerate(ROWS[:3])])
    path = folder / "pipeline.toml"
    path.write_text(
        f'''name = "fake-run"
task = "echo"

[data]
train = "data/train.jsonl"
validation = "data/val.jsonl"
test = "data/test.jsonl"

[teacher]
backend = "scripted"
model = "scripted/last-word"
{teacher_extra}

[student]
trainer = "memorise"
model = "memory"

[train]
loss = "sft"

[evaluate]
evaluators = ["task_metrics"]

[report]
reporters = ["text"]
{extra}

# The test rows are training rows on purpose: the memorising student is scored on what it learnt.
[data.contamination]
mode = "report"
'''
    )
    return path


@pytest.fixture
def pipeline_config(tmp_path: Path, stillhouse_home: Path):
    """A function writing the fake-plugin pipeline config (with extra TOML) and returning its path.
    The data files exist from the start, so a test can change them first."""
    write_fake_pipeline(tmp_path)
    return lambda extra="", teacher_extra="": write_fake_pipeline(tmp_path, extra, teacher_extra)
