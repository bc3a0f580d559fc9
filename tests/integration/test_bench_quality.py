"""bench/quality.py writes configs that `still run` accepts, with the levers it was asked to set."""

from __future__ import annotations

import argparse
import importlib.util
import shutil
from pathlib import Path
from types import ModuleType

from stillhouse.kernel.config import load_config
from stillhouse.kernel.plugins import get_host

ROOT = Path(__file__).resolve().parents[2]


def bench_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_quality", ROOT / "bench" / "quality.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_oracle_config_is_a_valid_pipeline_with_the_chosen_levers(tmp_path: Path) -> None:
    quality = bench_module()
    shutil.copy(ROOT / "tests" / "fixtures" / "data" / "nli.jsonl", tmp_path / "train_12.jsonl")
    shutil.copy(ROOT / "tests" / "fixtures" / "data" / "nli.jsonl", tmp_path / "test.jsonl")
    args = argparse.Namespace(lr=1e-4, epochs=2.0, batch=8, balance="downsample")
    config = quality.oracle_config("nli", 12, args, "http://127.0.0.1:9", last=False)
    path = tmp_path / "quality.toml"
    path.write_text(quality.to_toml(config))

    pipeline = load_config(path, get_host()).pipeline

    assert pipeline.data.balance == "downsample"
    assert (pipeline.train.learning_rate, pipeline.train.num_epochs, pipeline.train.batch_size) == (1e-4, 2.0, 8)
    assert pipeline.task_options.rationale == "drop"
    assert pipeline.evaluate.roles == ["student"]  # teacher and baseline only at the last curve point
