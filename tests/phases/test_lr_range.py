"""The LR range test on problems whose answer is known."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from raysweep.phases import lr_range


def linear_regression(scale: float, *, n: int = 2048, d: int = 8, seed: int = 0):
    """SGD on a least-squares problem whose features have standard deviation `scale`.

    For the mean squared error the Hessian is H = 2 X^T X / n, so SGD is stable only for
    lr < 2 / lambda_max(H), and lr = 1 / lambda_max is the fastest rate along the sharpest
    direction. Both scale as 1 / scale^2: the right learning rate follows from the data.
    """
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d, generator=g) * scale
    y = X @ torch.randn(d, generator=g) / scale + 0.1 * torch.randn(n, generator=g)
    lambda_max = torch.linalg.eigvalsh(2 * X.T @ X / n).max().item()
    model = torch.nn.Linear(d, 1, bias=False)
    torch.nn.init.zeros_(model.weight)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    batches = torch.Generator().manual_seed(seed + 1)

    def step(lr: float) -> float:
        for group in optimizer.param_groups:
            group["lr"] = lr
        rows = torch.randint(0, n, (128,), generator=batches)
        loss = torch.nn.functional.mse_loss(model(X[rows]).squeeze(1), y[rows])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss.item()

    return step, lambda_max


@pytest.mark.parametrize("scale", [0.1, 1.0, 10.0])
def test_range_test_finds_the_stable_learning_rate_of_a_linear_regression(scale):
    step, lambda_max = linear_regression(scale)
    curve = lr_range.range_test(step, start_lr=1e-7, end_lr=1e4, num_steps=200)
    s = lr_range.suggest(curve)
    assert curve.stopped_early, "the loss must blow up past 2 / lambda_max"
    assert s.high < 2 / lambda_max, "the suggested range must stay in the stable region"
    assert s.low <= 1 / lambda_max <= s.high, "the range contains the optimal rate"
    assert 1 / (10 * lambda_max) < s.lr < 2 / lambda_max


def test_suggestion_moves_with_the_data_scale():
    """Features 10x larger -> a learning rate 100x smaller (the Hessian scales with scale^2)."""
    small, _ = linear_regression(1.0)
    large, _ = linear_regression(10.0)
    lr_small = lr_range.suggest(lr_range.range_test(small, start_lr=1e-7, end_lr=1e4, num_steps=200)).lr
    lr_large = lr_range.suggest(lr_range.range_test(large, start_lr=1e-7, end_lr=1e4, num_steps=200)).lr
    assert 100 / 3 < lr_small / lr_large < 100 * 3


def test_schedule_is_exponential_from_start_to_end():
    lrs = lr_range.schedule(1e-6, 1.0, 7)
    assert lrs[0] == pytest.approx(1e-6) and lrs[-1] == pytest.approx(1.0)
    assert np.allclose(lrs[1:] / lrs[:-1], 10.0)


def test_range_test_stops_at_four_times_the_best_smoothed_loss():
    # Loss falls to 1 until lr 1e-3, then grows tenfold per step: the smoothed loss passes 4x.
    def step(lr):
        return 1.0 + 1.0 / lr if lr < 1e-3 else 1.0 + (lr / 1e-3) ** 3
    curve = lr_range.range_test(step, start_lr=1e-6, end_lr=1e3, num_steps=100, smoothing=0.0)
    assert curve.stopped_early and len(curve.lr) < 100
    assert curve.smoothed[-1] > 4 * curve.smoothed.min()
    assert curve.smoothed[-2] <= 4 * curve.smoothed.min()


def test_non_finite_loss_ends_the_curve():
    curve = lr_range.range_test(lambda lr: math.nan if lr > 1e-2 else 1.0, start_lr=1e-5, end_lr=1.0,
                                num_steps=20)
    assert curve.stopped_early and curve.lr.max() <= 1e-2


def test_too_short_a_curve_says_what_to_change():
    curve = lr_range.range_test(lambda lr: math.inf, num_steps=10)
    with pytest.raises(ValueError, match="lower lr_find.start_lr"):
        lr_range.suggest(curve)


def test_steps_to_fit_counts_steps_and_admits_failure():
    # Loss halves every step: below a tenth of the first loss after a few steps.
    state = {"loss": 8.0}

    def halving(lr):
        state["loss"] *= 0.5
        return state["loss"]

    steps, first, last = lr_range.steps_to_fit(halving, lr=1.0, loss_fraction=0.1, smoothing=0.0)
    assert steps == 5 and first == 4.0 and last <= 0.4
    steps, _, _ = lr_range.steps_to_fit(lambda lr: 1.0, lr=1.0, max_steps=50)
    assert steps is None
