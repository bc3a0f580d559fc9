"""student.init = "teacher-layers": a student built from a subset of the source model's layers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from stillhouse.kernel.errors import ConfigError
from stillhouse.plugins.hf_models import load_causal_lm
from stillhouse.plugins.losses.sft import SftLoss
from stillhouse.plugins.students.hf import HfStudentTrainer
from stillhouse.plugins.students.layers import build_from_layers

from .conftest import JobFactory


def test_all_layers_reproduce_the_source_exactly(tiny_teacher_dir: Path) -> None:
    source, _ = load_causal_lm(str(tiny_teacher_dir), dtype="float32", device="cpu")
    copy = build_from_layers(source, [0, 1, 2, 3]).eval()
    ids = torch.tensor([[5, 17, 42, 99, 7, 300]])
    with torch.no_grad():
        torch.testing.assert_close(copy(input_ids=ids).logits, source(input_ids=ids).logits)


def test_subset_copies_the_chosen_layers(tiny_teacher_dir: Path) -> None:
    source, _ = load_causal_lm(str(tiny_teacher_dir), dtype="float32", device="cpu")
    student = build_from_layers(source, [0, 3])
    assert student.config.num_hidden_layers == 2 and len(student.model.layers) == 2
    src, dst = source.state_dict(), student.state_dict()
    for name in ("self_attn.q_proj.weight", "mlp.down_proj.weight", "input_layernorm.weight"):
        assert torch.equal(dst[f"model.layers.1.{name}"], src[f"model.layers.3.{name}"])
        assert torch.equal(dst[f"model.layers.0.{name}"], src[f"model.layers.0.{name}"])
    assert torch.equal(dst["model.embed_tokens.weight"], src["model.embed_tokens.weight"])
    assert torch.equal(dst["model.norm.weight"], src["model.norm.weight"])
    with pytest.raises(ConfigError) as info:
        build_from_layers(source, [0, 4])
    assert info.value.where.field == "student.layers" and "0..3" in info.value.what


def test_trainer_builds_the_student_from_a_local_teacher(make_job: JobFactory) -> None:
    job, _ = make_job(SftLoss(), student={"init": "teacher-layers", "layers": [1, 3]}, max_steps=2)
    outcome = HfStudentTrainer(job.student).train(job)
    config = json.loads((outcome.model_dir / "config.json").read_text())
    assert config["num_hidden_layers"] == 2 and config["hidden_size"] == 128  # the teacher's width
    meta = json.loads((outcome.model_dir / "stillhouse_student.json").read_text())
    assert meta["init"] == "teacher-layers" and meta["layers"] == [1, 3]


def test_api_teacher_means_layers_of_the_student_model(make_job: JobFactory) -> None:
    job, _ = make_job(
        SftLoss(), teacher="openai/gpt-4o-mini", student={"init": "teacher-layers", "layers": [1]}, max_steps=1
    )
    outcome = HfStudentTrainer(job.student).train(job)
    config = json.loads((outcome.model_dir / "config.json").read_text())
    assert config["num_hidden_layers"] == 1 and config["hidden_size"] == 64  # the tiny student's width


def test_baseline_of_a_layer_subset_student_is_the_subset_untrained(tiny_teacher_dir: Path) -> None:
    from stillhouse.plugins.hf_models import count_parameters

    trainer = HfStudentTrainer(HfStudentTrainer.Config(model=str(tiny_teacher_dir), init="teacher-layers", layers=[0, 3]))
    baseline = trainer.load(None)
    full = HfStudentTrainer(HfStudentTrainer.Config(model=str(tiny_teacher_dir))).load(None)
    assert baseline.model.config.num_hidden_layers == 2 and full.model.config.num_hidden_layers == 4
    assert count_parameters(baseline.model) < count_parameters(full.model)
    assert "layers 0,3" in baseline.name
