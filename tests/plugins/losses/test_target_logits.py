"""The LM head at the target positions only (``Loss.target_logits_only``): training takes the same
steps as with the full logits, and the columns it keeps are exactly the targets'."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from stillhouse.plugins.losses.divergences import ForwardKL
from stillhouse.plugins.losses.hidden import HiddenMSE
from stillhouse.plugins.losses.sft import SftLoss
from stillhouse.plugins.students import hf_trainer
from stillhouse.plugins.students.hf import HfStudentTrainer

from .conftest import LossJob


def test_the_head_sees_the_target_positions_as_one_row(tiny_model_dir: Path) -> None:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    ids = torch.randint(5, 100, (2, 7))
    targets = torch.zeros(2, 7, dtype=torch.bool)
    targets[0, 4:6], targets[1, 1] = True, True
    head = hf_trainer.output_head(model)
    assert head is model.get_output_embeddings()
    with torch.no_grad():
        full = model(input_ids=ids).logits
        with hf_trainer.head_at(head, targets):
            kept = model(input_ids=ids).logits
        after = model(input_ids=ids).logits  # the hook is gone
    assert kept.shape == (1, 3, full.shape[-1])
    assert torch.allclose(kept[0], full[targets], atol=1e-5)
    assert after.shape == full.shape


def test_which_losses_read_only_target_logits() -> None:
    assert SftLoss.target_logits_only and ForwardKL.target_logits_only
    assert not HiddenMSE.target_logits_only  # reads hidden states at every position


@pytest.mark.parametrize("make", [SftLoss, lambda: ForwardKL(ForwardKL.Config(alpha=0.5))], ids=["sft", "forward_kl"])
def test_training_on_target_logits_only_matches_the_full_logits(
    make: Any, make_loss_job: LossJob, tiny_teacher_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows: list[int] = []
    original = hf_trainer.head_at

    def recording(head: Any, positions: torch.Tensor) -> Any:
        rows.append(int(positions.sum()))
        return original(head, positions)

    monkeypatch.setattr(hf_trainer, "head_at", recording)
    losses, real_head = {}, hf_trainer.output_head
    for mode in ("full", "targets"):
        on = mode == "targets"
        monkeypatch.setattr(hf_trainer, "output_head", lambda model, on=on: real_head(model) if on else None)
        job, events = make_loss_job(make(), tiny_teacher_dir, name=mode, max_steps=3, learning_rate=1e-3)
        HfStudentTrainer(job.student).train(job)
        losses[mode] = [e["value"] for e in events.of("metric", "train/loss")]
    assert len(losses["full"]) == 3
    assert losses["targets"] == pytest.approx(losses["full"], rel=1e-4)
    assert len(rows) == 3 and all(n > 0 for n in rows)  # every step ran the head on its targets alone
