"""`still export RUN_ID DIR --format dataset`: a real (fake-plugin) run's filtered samples as a
Hugging Face dataset, checked against the columns TRL's trainers document:

- SFTTrainer, conversational language modeling: ``{"messages": [{"role", "content"}, ...]}``;
- SFTTrainer, conversational prompt-completion: ``{"prompt": [messages], "completion": [assistant message]}``;
- GKDTrainer: ``{"messages": [...]}`` (the same conversational layout).
"""

from __future__ import annotations

import pytest

from stillhouse.kernel.config import load_config
from stillhouse.kernel.pipeline import Pipeline
from stillhouse.plugins import exporters
from tests.kernel import fakes
from tests.kernel.conftest import write_fake_pipeline

datasets = pytest.importorskip("datasets")
ROLES = {"system", "user", "assistant"}


def fake_run(make_host, folder, stages):
    """A run of the kernel's fake plugins (scripted teacher, echo task) through ``stages`` only."""
    fakes.reset()
    host = make_host(fakes, exporters, entry_points=False)
    pipeline = Pipeline.create(load_config(write_fake_pipeline(folder), host), host)
    assert pipeline.execute(stages) == "completed"
    return pipeline.run


@pytest.fixture
def filtered_run(make_host, tmp_path, stillhouse_home):
    """A run that has only generated and filtered: no student, which a data export does not need."""
    return fake_run(make_host, tmp_path, ["generate", "filter"])


def test_the_export_holds_accepted_and_rejected_samples_in_trl_layouts(filtered_run, run_still, tmp_path):
    dest = tmp_path / "distilled-data"
    result = run_still("export", filtered_run.id, str(dest), "--format", "dataset")
    assert result.exit_code == 0, result.output
    assert "teacher's samples" in result.output and "load_from_disk" in result.output

    exported = datasets.load_from_disk(str(dest))
    assert set(exported) == {"train", "validation", "rejected"}
    train = exported["train"]
    assert sorted(train["sample_id"]) == ["t0", "t1", "t2", "t5"] and exported["validation"]["sample_id"] == ["v0"]
    for row in [*train, *exported["validation"], *exported["rejected"]]:
        messages = row["messages"]
        assert all(set(m) == {"role", "content"} and m["role"] in ROLES and isinstance(m["content"], str) for m in messages)
        assert messages[-1]["role"] == "assistant" and messages[-2]["role"] == "user"
        assert row["prompt"] == messages[:-1] and row["completion"] == messages[-1:]
    first = next(r for r in train if r["sample_id"] == "t0")
    assert first["completion"] == [{"role": "assistant", "content": "blue"}]
    assert first["teacher_model"] == "scripted/last-word" and first["reason"] == "ok" and first["weight"] == 1.0
    assert first["reference"] == '"blue"'
    rejected = {r["sample_id"]: r for r in exported["rejected"]}
    assert rejected["t3"]["reason"] == "label_mismatch" and rejected["t3"]["completion"][0]["content"] == "dark"
    assert rejected["t4"]["reason"] == "forbidden_word" and rejected["t4"]["weight"] == 0.0


def test_the_trl_helpers_recognise_the_layouts(filtered_run, run_still, tmp_path):
    data_utils = pytest.importorskip("trl.data_utils")  # checked where trl is installed; the layout test above always runs
    dest = tmp_path / "for-trl"
    assert run_still("export", filtered_run.id, str(dest), "--format", "dataset").exit_code == 0
    row = datasets.load_from_disk(str(dest))["train"][0]
    assert data_utils.is_conversational(row)
    assert data_utils.is_conversational({"messages": row["messages"]})


def test_a_run_without_filtered_samples_is_refused(make_host, run_still, tmp_path, stillhouse_home):
    run = fake_run(make_host, tmp_path, ["generate"])
    dest = tmp_path / "nothing"
    result = run_still("export", run.id, str(dest), "--format", "dataset")
    assert result.exit_code == 2 and "has no filtered samples" in result.output and "--stage filter" in result.output
    assert not dest.exists()


def test_trl_sft_trainer_trains_on_the_export(filtered_run, run_still, tmp_path, tiny_model_dir):
    """The README's snippet: TRL's SFTTrainer reads the exported train split as it is."""
    trl = pytest.importorskip("trl")
    dest = tmp_path / "sft-data"
    assert run_still("export", filtered_run.id, str(dest), "--format", "dataset").exit_code == 0

    train = datasets.load_from_disk(str(dest))["train"]
    args = trl.SFTConfig(output_dir=str(tmp_path / "sft-out"), max_steps=2, per_device_train_batch_size=2, report_to=[], use_cpu=True)
    trainer = trl.SFTTrainer(model=str(tiny_model_dir), train_dataset=train, args=args)
    outcome = trainer.train()
    assert outcome.global_step == 2 and outcome.training_loss > 0
