"""The loss registry against hand computations; LR schedule shapes at known epochs."""

from __future__ import annotations

import math

import pytest
import torch

from raysweep.training import losses, schedules

PRED = torch.tensor([[1.0, 2.0], [3.0, 5.0]])
TARGET = torch.tensor([[1.5, 2.0], [2.0, 1.0]])   # errors 0.5, 0, 1, 4


@pytest.mark.parametrize("name, params, expected", [
    ("mse", {}, (0.25 + 0 + 1 + 16) / 4),
    ("mae", {}, (0.5 + 0 + 1 + 4) / 4),
    # Huber, delta 1: 0.5 e^2 within delta, delta (|e| - delta / 2) beyond.
    ("huber", {"delta": 1.0}, (0.125 + 0 + 0.5 + 3.5) / 4),
    ("hybrid", {"alpha": 0.7}, 0.7 * 1.375 + 0.3 * 4.3125),
    ("mape", {}, (0.5 / 1.5 + 0 + 1 / 2 + 4 / 1) / 4),
])
def test_regression_losses_match_hand_computation(name, params, expected):
    assert losses.get(name, **params)(PRED, TARGET).item() == pytest.approx(expected)


def test_bce_and_focal_match_hand_computation():
    logits = torch.tensor([[0.0, 2.0]])
    target = torch.tensor([[1.0, 0.0]])
    p = 1 / (1 + math.exp(-2.0))
    bce = (-math.log(0.5) - math.log(1 - p)) / 2
    assert losses.get("bce")(logits, target).item() == pytest.approx(bce)
    # Focal, alpha 0.25, gamma 2: positive with p=0.5 -> 0.25 * 0.5^2 * -log 0.5;
    # negative with p_t = 1 - p -> 0.75 * p^2 * -log(1 - p). One row, two tasks: mean of both.
    pos = 0.25 * 0.25 * -math.log(0.5)
    neg = 0.75 * p ** 2 * -math.log(1 - p)
    assert losses.get("focal")(logits, target).item() == pytest.approx((pos + neg) / 2)
    # Per-task alpha/gamma and task weights (the brake/coast seed's configuration).
    weighted = losses.get("focal", alpha=[0.2, 0.3], gamma=[3.0, 2.0], task_weights=[3.0, 1.0])
    pos = 0.2 * 0.5 ** 3 * -math.log(0.5)
    neg = 0.7 * p ** 2 * -math.log(1 - p)
    assert weighted(logits, target).item() == pytest.approx((3 * pos + neg) / 4)


def test_focal_with_gamma_zero_and_half_alpha_is_half_bce():
    logits, target = torch.randn(8, 3), (torch.rand(8, 3) > 0.5).float()
    focal = losses.get("focal", alpha=0.5, gamma=0.0)(logits, target)
    assert focal.item() == pytest.approx(0.5 * losses.get("bce")(logits, target).item(), rel=1e-6)


def test_physics_informed_penalises_rises_and_curvature():
    pred = torch.tensor([[1.0, 0.9, 1.0, 0.7]])    # rises once by 0.1
    target = pred.clone()                           # base loss 0
    loss = losses.get("physics_informed", monotonicity_weight=2.0, smoothness_weight=1.0)
    rises = (0 + 0.1 + 0) / 3
    curvature = ((0.1 + 0.1) ** 2 + (-0.3 - 0.1) ** 2) / 2   # second differences 0.2, -0.4
    assert loss(pred, target).item() == pytest.approx(2.0 * rises + curvature)
    assert losses.get("physics_informed")(pred, target).item() == 0.0


def test_unknown_names_list_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown loss 'huberr'. Did you mean 'huber'\? Known: mse, mae"):
        losses.get("huberr")
    with pytest.raises(ValueError, match=r"loss 'huber' has no parameter 'delt'. Did you mean 'delta'\?"):
        losses.get("huber", delt=1.0)
    with pytest.raises(ValueError, match="Known: constant, exponential, cosine_restarts"):
        schedules.build(torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0), "cosine")


def rates(n_epochs: int, **kwargs) -> list[float]:
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    schedule = schedules.build(optimizer, **kwargs)
    out = []
    for _ in range(n_epochs):
        out.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.step()
    return out


def test_schedule_shapes_at_known_epochs():
    assert rates(4, name="exponential", gamma=0.5) == pytest.approx([1, 0.5, 0.25, 0.125])
    assert rates(3, name="constant") == [1.0, 1.0, 1.0]
    # Cosine with restarts, T0=2, T_mult=2: cycles of 2 then 4 epochs, each starting at lr.
    cos = lambda t, period: 0.5 * (1 + math.cos(math.pi * t / period))  # noqa: E731
    assert rates(7, name="cosine_restarts", t0=2, t_mult=2) == pytest.approx(
        [1, cos(1, 2), 1, cos(1, 4), cos(2, 4), cos(3, 4), 1])


def test_warmup_rises_linearly_then_hands_over():
    assert rates(6, name="exponential", gamma=0.5, warmup_epochs=3) == pytest.approx(
        [0.25, 0.5, 0.75, 1.0, 0.5, 0.25])
    assert rates(4, name="cosine_restarts", t0=2, warmup_epochs=1) == pytest.approx([0.5, 1.0, 0.5, 1.0])
