"""Hugging Face datasets as data splits: save_to_disk folders, local dataset repo folders and hf:
Hub ids (offline: from the cache only), read through the same field mapping and bad-row handling
as files, with their mistakes caught at config check."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stillhouse.kernel.config import load_config
from stillhouse.kernel.data import load_split
from stillhouse.kernel.errors import ConfigError, DataError
from stillhouse.kernel.pipeline import Pipeline
from tests.kernel import fakes
from tests.kernel.conftest import ROWS

datasets = pytest.importorskip("datasets")


def rows(n: int = len(ROWS)) -> dict[str, list]:
    return {"id": [f"t{i}" for i in range(n)], "sentence": [t for t, _ in ROWS[:n]], "colour": [c for _, c in ROWS[:n]]}


def with_data(config: Path, data_toml: str) -> Path:
    """The fake pipeline config with its [data] section replaced (fields mapped to our columns)."""
    text = config.read_text()
    start, end = text.index("[data]"), text.index("[teacher]")
    config.write_text(text[:start] + "[data]\n" + data_toml + '\nfields = { text = "sentence", label = "colour" }\n\n' + text[end:])
    return config


@pytest.fixture
def saved_dict(tmp_path: Path) -> Path:
    folder = tmp_path / "saved"
    datasets.DatasetDict(
        {"train": datasets.Dataset.from_dict(rows()), "test": datasets.Dataset.from_dict(rows(3))}
    ).save_to_disk(str(folder))
    return folder


def test_a_save_to_disk_folder_runs_the_whole_pipeline(fake_host, pipeline_config, saved_dict):
    config = with_data(pipeline_config(), f'train = "{saved_dict}"\ntest = "hf:saved?split=test"')
    loaded = load_config(config, fake_host)
    pipeline = Pipeline.create(loaded, fake_host)
    assert pipeline.execute() == "completed"
    stored = json.loads(pipeline.run.path("config.json").read_text())["data"]
    assert stored["test"] == f"hf:{saved_dict}?split=test"  # absolute: a resume finds it from anywhere
    samples = [json.loads(line) for line in pipeline.run.path("samples.jsonl").read_text().splitlines()]
    assert {s["sample_id"] for s in samples if s["accepted"]} == {"t0", "t1", "t2", "t5"}
    results = json.loads(pipeline.run.path("eval", "results.json").read_text())
    assert results["student"]["metrics"][0]["value"] == 1.0


def test_a_local_dataset_repo_folder_with_subsets_and_class_labels(fake_host, pipeline_config, tmp_path):
    repo = tmp_path / "colours"
    (repo / "small").mkdir(parents=True)
    (repo / "small" / "train.jsonl").write_text("".join(json.dumps({"sentence": t, "colour": c}) + "\n" for t, c in ROWS[:2]))
    (repo / "README.md").write_text(
        "---\nconfigs:\n- config_name: small\n  data_files:\n  - split: train\n    path: small/train.jsonl\n---\n# colours\n"
    )
    config = with_data(pipeline_config(), 'train = "hf:colours?subset=small"\nlimit = 1')
    loaded = load_config(config, fake_host)
    task = fake_host.get("task", "echo")()
    split = load_split(task, loaded.data_path("train"), "train", limit=1, mapping=loaded.pipeline.data.fields)
    assert [(e.inputs["text"], e.reference) for e in split.examples] == [("the sky is blue", "blue")]

    labelled = tmp_path / "labelled"
    features = datasets.Features({"sentence": datasets.Value("string"), "colour": datasets.ClassLabel(names=["blue", "green"])})
    datasets.Dataset.from_dict({"sentence": ["sky", "grass", "void"], "colour": [0, 1, -1]}, features=features).save_to_disk(str(labelled))
    examples = load_split(task, labelled, "train", mapping={"text": "sentence", "label": "colour"}).examples
    assert [e.reference for e in examples] == ["blue", "green", None]  # label names, -1 is no label


def test_bad_rows_are_reported_or_skipped_as_for_files(fake_host, tmp_path):
    folder = tmp_path / "holes"
    datasets.Dataset.from_dict({"sentence": ["sky is blue", None, "grass is green"]}).save_to_disk(str(folder))
    task = fake_host.get("task", "echo")()
    mapping = {"text": "sentence"}
    with pytest.raises(DataError) as caught:
        load_split(task, folder, "train", mapping=mapping)
    assert caught.value.where is not None and (caught.value.where.file, caught.value.where.line) == (str(folder), 2)
    skipped = load_split(task, folder, "train", mapping=mapping, on_bad_rows="skip")
    assert len(skipped.examples) == 2 and skipped.skipped == 1


@pytest.mark.parametrize(
    ("data_toml", "message", "hint"),
    [
        ('train = "hf:saved?split=validation"', "has no split 'validation'", "its splits: train, test"),
        ('train = "hf:saved?spilt=train"', "unknown option spilt", "?split=train"),
        ('train = "hf:stillhouse-test/not-cached-anywhere"', "is offline", "datasets.load_dataset('stillhouse-test/not-cached-anywhere')"),
    ],
)
def test_dataset_mistakes_exit_2_at_config_check(fake_host, pipeline_config, saved_dict, monkeypatch, data_toml, message, hint):
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # as in tests and CI; set here so the test does not depend on it
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(ConfigError) as caught:
        load_config(with_data(pipeline_config(), data_toml), fake_host)
    error = caught.value
    assert error.exit_code == 2 and message in error.what and hint in (error.hint or "")
    assert error.where is not None and error.where.line is not None and error.where.field == "data.train"
    assert not fakes.CALLS


def test_the_readme_dataset_sources_parse():
    import re
    import tomllib

    from stillhouse.kernel.data_hf import DatasetSource, parse_source

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    block = next(b for b in re.findall(r"```toml\n(.*?)```", readme, flags=re.S) if '"hf:' in b)
    data = tomllib.loads(block)["data"]
    assert parse_source(data["train"]) == DatasetSource("stanfordnlp/snli")
    assert parse_source(data["test"]) == DatasetSource("nyu-mll/glue", "validation_matched", "mnli", "main")


def test_balance_by_a_column_of_an_hf_source(fake_host, pipeline_config, tmp_path):
    folder = tmp_path / "topics"
    topics = ["sky", "sky", "sky", "ground", "ground", "ground"]
    datasets.Dataset.from_dict({**rows(), "topic": topics}).save_to_disk(str(folder))
    config = with_data(pipeline_config(), 'train = "hf:topics"\nbalance = "downsample"\nbalance_by = "topic"')
    pipeline = Pipeline.create(load_config(config, fake_host), fake_host)
    assert pipeline.execute(["generate", "filter", "train"]) == "completed"
    events = [json.loads(line) for line in pipeline.run.path("events.jsonl").read_text().splitlines()]
    report = next(e for e in events if e["type"] == "curation" and e.get("step") == "balance")
    assert report["by"] == "topic" and report["mode"] == "downsample"
    assert report["distributions"]["input"] == {"ground": 3, "sky": 3}  # read from the dataset's own column
    # accepted: t0 t1 t2 (sky) and t5 (ground); downsampled to the rarer topic's count
    assert report["distributions"]["accepted"] == {"ground": 1, "sky": 3}
    assert report["distributions"]["training"] == {"ground": 1, "sky": 1}
    train = next(e for e in events if e["type"] == "stage_finished" and e["stage"] == "train")["summary"]
    assert train["balance"]["training"] == {"ground": 1, "sky": 1} and train["train_pairs"] == 2
