"""Loss plugins against values computed by hand on tiny tensors (see the comments for the arithmetic)."""

from __future__ import annotations

import math

import pytest
import torch
from pydantic import ValidationError

from stillhouse.kernel.interfaces import LossInputs
from stillhouse.kernel.plugins import PluginHost
from stillhouse.plugins import losses as losses_pkg
from stillhouse.plugins.losses.divergences import ForwardKL, GeneralizedJSD, ReverseKL, SkewKL, TotalVariation
from stillhouse.plugins.losses.hidden import HiddenMSE
from stillhouse.plugins.losses.sft import SftLoss

LN = math.log


def one_position(
    student_logits: list[float], teacher_ids: list[int], teacher_probs: list[float], label: int = 0
) -> LossInputs:
    """A batch with a single target position; teacher probabilities given in probability space."""
    lps = [LN(p) if p > 0 else float("-inf") for p in teacher_probs]
    return LossInputs(
        logits=torch.tensor([[student_logits]], requires_grad=True),
        labels=torch.tensor([[label]]),
        teacher_ids=torch.tensor([[teacher_ids]]),
        teacher_logprobs=torch.tensor([[lps]]),
    )


def test_registered_through_the_hook() -> None:
    host = PluginHost(entry_points=False, plugins=[losses_pkg])
    assert host.names("loss") == [
        "attention_relation",
        "forward_kl",
        "hidden_cosine",
        "hidden_mse",
        "jsd",
        "reverse_kl",
        "sft",
        "skew_kl",
        "tvd",
        "uld",
    ]
    assert host.get("loss", "tvd").requires == frozenset({"teacher_logprobs"})
    assert host.get("loss", "hidden_mse").requires == frozenset({"teacher_hidden"})
    assert host.get("loss", "sft").requires == frozenset()


def test_sft_masks_prompt_positions_and_weights_tokens() -> None:
    # pos 0: uniform over 3 -> CE ln 3; pos 1 masked (huge logits must not matter);
    # pos 2: softmax(0, ln 3, 0) = (1/5, 3/5, 1/5), label 1 -> CE ln(5/3). Mean = ln(5)/2.
    logits = torch.tensor([[[0.0, 0.0, 0.0], [50.0, -50.0, 9.0], [0.0, LN(3), 0.0]]])
    labels = torch.tensor([[1, -100, 1]])
    loss = SftLoss()(LossInputs(logits=logits, labels=labels))
    assert loss.item() == pytest.approx(LN(5) / 2, abs=1e-6)
    # Weights multiply each token; the normaliser stays the target count (2).
    weights = torch.tensor([[2.0, 7.0, 1.0]])
    weighted = SftLoss()(LossInputs(logits=logits, labels=labels, weights=weights))
    assert weighted.item() == pytest.approx((2 * LN(3) + LN(5 / 3)) / 2, abs=1e-6)
    # A global normaliser (gradient accumulation) replaces the local count.
    scaled = SftLoss()(LossInputs(logits=logits, labels=labels, num_items=4))
    assert scaled.item() == pytest.approx(LN(5) / 4, abs=1e-6)


def test_forward_kl_renormalises_both_sides_over_top_k() -> None:
    # Teacher top-2 probs 0.6, 0.2 -> renormalised p = (0.75, 0.25).
    # Student probs on ids (0, 1) are 1 : 3 -> q = (0.25, 0.75); id 2's large logit is outside top-k.
    # KL(p||q) = 0.75 ln 3 + 0.25 ln(1/3) = 0.5 ln 3.
    inputs = one_position([0.0, LN(3), LN(100), 0.0], [0, 1], [0.6, 0.2])
    loss = ForwardKL(ForwardKL.Config(alpha=1.0))(inputs)
    assert loss.item() == pytest.approx(0.5 * LN(3), abs=1e-6)


P = (0.75, 0.25)  # renormalised teacher after top-k (from 0.6, 0.2)
Q = (0.5, 0.5)  # student restricted to the same ids (equal logits)


@pytest.mark.parametrize(
    ("cls", "options", "expected"),
    [
        (ForwardKL, {}, P[0] * LN(P[0] / Q[0]) + P[1] * LN(P[1] / Q[1])),
        (ReverseKL, {}, Q[0] * LN(Q[0] / P[0]) + Q[1] * LN(Q[1] / P[1])),
        # m = (0.625, 0.375); 0.5 KL(p||m) + 0.5 KL(q||m)
        (
            GeneralizedJSD,
            {"beta": 0.5},
            0.5 * (0.75 * LN(0.75 / 0.625) + 0.25 * LN(0.25 / 0.375))
            + 0.5 * (0.5 * LN(0.5 / 0.625) + 0.5 * LN(0.5 / 0.375)),
        ),
        # beta = 0.2: m = 0.2 p + 0.8 q = (0.55, 0.45)
        (
            GeneralizedJSD,
            {"beta": 0.2},
            0.2 * (0.75 * LN(0.75 / 0.55) + 0.25 * LN(0.25 / 0.45))
            + 0.8 * (0.5 * LN(0.5 / 0.55) + 0.5 * LN(0.5 / 0.45)),
        ),
        # skew 0.1: mixture 0.1 p + 0.9 q = (0.525, 0.475); KL(p || mixture)
        (SkewKL, {"skew": 0.1}, 0.75 * LN(0.75 / 0.525) + 0.25 * LN(0.25 / 0.475)),
        # skew reverse: KL(q || 0.1 q + 0.9 p) with 0.1 q + 0.9 p = (0.725, 0.275)
        (SkewKL, {"skew": 0.1, "reverse": True}, 0.5 * LN(0.5 / 0.725) + 0.5 * LN(0.5 / 0.275)),
        (TotalVariation, {}, 0.5 * (abs(0.75 - 0.5) + abs(0.25 - 0.5))),
    ],
)
def test_divergences_match_hand_computed_values(cls: type, options: dict, expected: float) -> None:
    inputs = one_position([0.0, 0.0, 5.0, -3.0], [0, 1], [0.6, 0.2])
    loss = cls(cls.Config(alpha=1.0, **options))(inputs)
    assert loss.item() == pytest.approx(expected, abs=1e-6)


def test_forward_kl_gradient_is_q_minus_p_on_top_k_and_zero_elsewhere() -> None:
    inputs = one_position([0.0, 0.0, 5.0, -3.0], [0, 1], [0.6, 0.2])
    ForwardKL(ForwardKL.Config(alpha=1.0))(inputs).backward()
    grad = inputs.logits.grad[0, 0]
    assert grad.tolist() == pytest.approx([0.5 - 0.75, 0.5 - 0.25, 0.0, 0.0], abs=1e-6)


def test_temperature_applies_to_both_sides_and_scales_by_t_squared() -> None:
    # T = 2: p ∝ (0.6^(1/2), 0.2^(1/2)) = (sqrt 3, 1)/(sqrt 3 + 1); student logits (0, 2 ln 2) / 2 -> q ∝ (1, 2).
    s3 = math.sqrt(3)
    p = (s3 / (s3 + 1), 1 / (s3 + 1))
    q = (1 / 3, 2 / 3)
    kl = p[0] * LN(p[0] / q[0]) + p[1] * LN(p[1] / q[1])
    inputs = one_position([0.0, 2 * LN(2), 0.0], [0, 1], [0.6, 0.2])
    loss = ForwardKL(ForwardKL.Config(alpha=1.0, temperature=2.0))(inputs)
    assert loss.item() == pytest.approx(4 * kl, abs=1e-6)


def test_alpha_mixes_cross_entropy_at_temperature_one() -> None:
    # logits (0, 0, 0, 0), label 2 -> CE = ln 4 (full vocabulary, never tempered).
    # T = 3: p ∝ (3^(1/3), 1), q = (0.5, 0.5); the KL term is scaled by T^2 = 9.
    inputs = one_position([0.0, 0.0, 0.0, 0.0], [0, 1], [0.6, 0.2], label=2)
    c = 3 ** (1 / 3)
    p = (c / (c + 1), 1 / (c + 1))
    kl = p[0] * LN(p[0] / 0.5) + p[1] * LN(p[1] / 0.5)
    loss = ForwardKL(ForwardKL.Config(alpha=0.25, temperature=3.0))(inputs)
    assert loss.item() == pytest.approx(0.75 * LN(4) + 0.25 * 9 * kl, abs=1e-6)


def test_masked_positions_empty_slots_and_positions_without_teacher() -> None:
    garbage = float("nan")
    logits = torch.tensor([[[0.0, 0.0, 0.0], [9.0, -9.0, 0.0], [0.0, 0.0, 0.0]]], requires_grad=True)
    labels = torch.tensor([[0, -100, 1]])
    # pos 0: slots (0, -1, 1): the empty middle slot is ignored -> p = (0.75, 0.25), q = (0.5, 0.5).
    # pos 1: masked by the label, its teacher values are garbage and must not leak in.
    # pos 2: no teacher slot at all -> only CE contributes there.
    ids = torch.tensor([[[0, -1, 1], [2, 1, 0], [-1, -1, -1]]])
    lps = torch.tensor([[[LN(0.6), float("-inf"), LN(0.2)], [garbage, 0.0, 0.0], [float("-inf")] * 3]])
    inputs = LossInputs(logits=logits, labels=labels, teacher_ids=ids, teacher_logprobs=lps)
    loss = ForwardKL(ForwardKL.Config(alpha=0.5))(inputs)
    kl0 = 0.75 * LN(1.5) + 0.25 * LN(0.5)
    expected = 0.5 * (LN(3) + LN(3)) / 2 + 0.5 * kl0 / 2
    assert loss.item() == pytest.approx(expected, abs=1e-6)
    loss.backward()
    assert torch.isfinite(logits.grad).all()
    assert logits.grad[0, 1].abs().sum().item() == 0.0


def test_alpha_zero_needs_no_teacher_and_equals_cross_entropy() -> None:
    logits = torch.tensor([[[0.0, LN(3), 0.0]]])
    loss = ReverseKL(ReverseKL.Config(alpha=0.0))(LossInputs(logits=logits, labels=torch.tensor([[1]])))
    assert loss.item() == pytest.approx(LN(5 / 3), abs=1e-6)


@pytest.mark.parametrize("cls", [ForwardKL, HiddenMSE], ids=lambda c: c.name)
def test_signals_needed_follow_the_options(cls: type) -> None:
    """The trainer asks the configured loss (Loss.signals_needed), not its class, what to compute."""
    assert cls().signals_needed() == cls.requires != frozenset()
    assert cls(cls.Config(alpha=0.0)).signals_needed() == frozenset()
    assert SftLoss().signals_needed() == frozenset()


def test_a_loss_without_parameters_of_its_own_has_no_trainable_module() -> None:
    assert SftLoss().trainable_module(4, 8) is None
    assert ForwardKL().trainable_module(4, 8) is None


def test_missing_teacher_signals_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="teacher_ids"):
        ForwardKL()(LossInputs(logits=torch.zeros(1, 1, 3), labels=torch.tensor([[0]])))


def test_config_validation() -> None:
    with pytest.raises(ValidationError):
        GeneralizedJSD.Config(beta=1.0)
    with pytest.raises(ValidationError):
        ForwardKL.Config(alpha=1.5)
    with pytest.raises(ValidationError):
        ForwardKL.Config(temprature=2.0)
    with pytest.raises(ValidationError):
        SftLoss.Config(alpha=0.5)
    assert SkewKL.Config().skew == 0.1


def test_hidden_mse_equal_widths_and_projection() -> None:
    # Same width: MSE over the hidden dim, averaged over target tokens. Position 1 is masked.
    s = torch.tensor([[[1.0, 2.0], [100.0, 100.0], [0.0, 0.0]]])
    t = torch.tensor([[[0.0, 0.0], [0.0, 0.0], [3.0, 1.0]]])
    inputs = LossInputs(
        logits=torch.zeros(1, 3, 4), labels=torch.tensor([[0, -100, 0]]), student_hidden=(s,), teacher_hidden=(t,)
    )
    loss = HiddenMSE(HiddenMSE.Config(alpha=1.0))
    assert loss.trainable_module(2, 2) is None
    # token 0: ((1)^2 + (2)^2)/2 = 2.5; token 2: (9 + 1)/2 = 5 -> mean 3.75
    assert loss(inputs).item() == pytest.approx(3.75)

    # Widths 2 -> 3 through a projection we set by hand: W maps (a, b) to (a, b, a + b).
    loss = HiddenMSE(HiddenMSE.Config(alpha=1.0, student_layer=0, teacher_layer=0))
    proj = loss.trainable_module(2, 3)
    with torch.no_grad():
        proj.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]))
    t3 = torch.tensor([[[1.0, 2.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 6.0]]])
    inputs = LossInputs(
        logits=torch.zeros(1, 3, 4), labels=torch.tensor([[0, -100, 0]]), student_hidden=(s,), teacher_hidden=(t3,)
    )
    value = loss(inputs)
    # token 0: projected (1, 2, 3) vs (1, 2, 0) -> 9/3 = 3; token 2: (0, 0, 0) vs (0, 0, 6) -> 36/3 = 12
    assert value.item() == pytest.approx(7.5)
    value.backward()
    assert proj.weight.grad is not None and proj.weight.grad.abs().sum() > 0
