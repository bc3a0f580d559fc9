"""``hidden_mse`` / ``hidden_cosine`` with a layer map: the uniform map, hand-computed multi-pair
values, out-of-range layers refused before training, and a trainer run with a uniform map."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from stillhouse.kernel.errors import ConfigError
from stillhouse.kernel.interfaces import LossInputs
from stillhouse.plugins.losses.hidden import HiddenCosine, HiddenMSE, uniform_map
from stillhouse.plugins.students.hf import HfStudentTrainer

from .conftest import LossJob


def test_uniform_map_ends_on_the_last_layer() -> None:
    assert uniform_map(2, 4) == {1: 2, 2: 4}
    assert uniform_map(3, 4) == {1: 1, 2: 3, 3: 4}
    assert uniform_map(4, 2) == {1: 1, 2: 1, 3: 2, 4: 2}


def test_explicit_map_averages_the_pairs_by_hand() -> None:
    # Student states 0, 1; teacher states 0, 1, 2. Map {0: 0, 1: 2}; position 1 is masked.
    s0 = torch.tensor([[[1.0, 0.0], [9.0, 9.0]]])
    s1 = torch.tensor([[[1.0, 1.0], [9.0, 9.0]]])
    t0 = torch.tensor([[[0.0, 1.0], [0.0, 0.0]]])
    t1 = torch.zeros(1, 2, 2)
    t2 = torch.tensor([[[2.0, 2.0], [0.0, 0.0]]])
    inputs = LossInputs(
        logits=torch.zeros(1, 2, 4),
        labels=torch.tensor([[0, -100]]),
        student_hidden=(s0, s1),
        teacher_hidden=(t0, t1, t2),
    )
    mse = HiddenMSE(HiddenMSE.Config(alpha=1.0, layer_map={0: 0, 1: 2}))
    # pair (0, 0): ((1)^2 + (1)^2) / 2 = 1; pair (1, 2): (1 + 1) / 2 = 1 -> mean 1
    assert mse(inputs).item() == pytest.approx(1.0)
    cosine = HiddenCosine(HiddenCosine.Config(alpha=1.0, layer_map={0: 0, 1: 2}))
    # pair (0, 0): orthogonal -> 1; pair (1, 2): parallel -> 0 -> mean 0.5
    assert cosine(inputs).item() == pytest.approx(0.5)


def test_uniform_map_builds_one_projection_per_pair() -> None:
    loss = HiddenCosine(HiddenCosine.Config(layer_map="uniform"))
    assert loss.resolve(2, 4) == [(1, 2), (2, 4)]
    module = loss.trainable_module(64, 128)
    assert isinstance(module, torch.nn.ModuleList) and len(module) == 2


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"layer_map": {3: 1}}, "student layer 3"),
        ({"layer_map": {1: -6}}, "teacher layer -6"),
        ({"teacher_layer": 5}, "teacher layer 5"),
    ],
)
def test_out_of_range_layers_are_named(options: dict, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        HiddenMSE(HiddenMSE.Config(**options)).resolve(2, 4)
    assert message in str(info.value)


def test_trainer_refuses_a_bad_map_before_training(make_loss_job: LossJob, tiny_teacher_dir: Path) -> None:
    job, events = make_loss_job(HiddenMSE(HiddenMSE.Config(layer_map={1: 7})), tiny_teacher_dir)
    with pytest.raises(ConfigError) as info:
        HfStudentTrainer(job.student).train(job)
    assert "teacher layer 7" in str(info.value) and "4 layers" in str(info.value)
    assert not events.of("metric", "train/loss")


def test_trainer_with_a_uniform_map(make_loss_job: LossJob, tiny_teacher_dir: Path) -> None:
    loss = HiddenCosine(HiddenCosine.Config(alpha=1.0, layer_map="uniform"))
    job, events = make_loss_job(loss, tiny_teacher_dir, max_steps=5)
    HfStudentTrainer(job.student).train(job)
    assert loss.pairs == [(1, 2), (2, 4)]  # student 2 blocks, teacher 4
    losses = [e["value"] for e in events.of("metric", "train/loss")]
    assert len(losses) == 5 and losses[-1] < losses[0]
