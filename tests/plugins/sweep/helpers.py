"""A tiny NLI pipeline against the fake OpenAI server (an oracle teacher) and sweep files over it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

FIXTURE = Path(__file__).parents[2] / "fixtures" / "data" / "nli.jsonl"
KEY_ENV = {"SWEEP_TEACHER_KEY": "test-key-sweep"}

SPACE = """
[sweep.space]
"train.learning_rate" = { type = "float", low = 1e-4, high = 1e-2, log = true }
"train.lr_scheduler" = { type = "categorical", choices = ["linear", "constant"] }
"""


def rows() -> list[dict[str, Any]]:
    return [json.loads(line) for line in FIXTURE.read_text().splitlines() if line.strip()]


def write_pipeline(folder: Path, api_base: str, student: Path, *, train: int = 8, validation: int = 4) -> Path:
    """An NLI pipeline config: ``train`` rows to train on, ``validation`` rows to score trials on."""
    folder.mkdir(parents=True, exist_ok=True)
    data = rows()
    (folder / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in data[:train]))
    (folder / "val.jsonl").write_text("".join(json.dumps(r) + "\n" for r in data[train : train + validation]))
    path = folder / "run.toml"
    path.write_text(
        f'''name = "nli-tiny"
task = "nli"

[data]
train = "train.jsonl"
validation = "val.jsonl"

[task_options]
ask_rationale = false

[teacher]
model = "openai/fake-teacher"
api_base = "{api_base}"
api_key_env = "SWEEP_TEACHER_KEY"
temperature = 0.0
max_tokens = 32
concurrency = 2
max_retries = 1

[student]
model = "{student}"
max_length = 512

[train]
num_epochs = 2
batch_size = 4
logging_steps = 1

[evaluate]
max_new_tokens = 4
batch_size = 4
evaluators = ["task_metrics"]

[report]
reporters = ["markdown"]
'''
    )
    return path


def write_sweep(folder: Path, *, body: str = "", space: str = SPACE, config: str = "run.toml") -> Path:
    """A sweep file next to the pipeline config; ``body`` adds keys to [sweep]."""
    path = folder / "sweep.toml"
    path.write_text(f'[sweep]\nconfig = "{config}"\n{body}\n{space}')
    return path
