"""The loop's gradient pieces on CPU: accumulation equals a larger batch; clipping bounds the norm."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from raysweep.training import loop


class Linear:
    """A minimal workload: a linear model under mean squared error."""

    @staticmethod
    def compute_loss(model, batch, cfg):
        pred = model(batch["x"]).squeeze(1)
        return torch.nn.functional.mse_loss(pred, batch["y"]), pred


def trainee(seed: int = 0) -> loop.Trainee:
    torch.manual_seed(seed)
    model = torch.nn.Linear(4, 1)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.1)
    return loop.Trainee(model, optimizer, torch.optim.lr_scheduler.ConstantLR(optimizer, factor=1.0, total_iters=0))


def batches(n_rows: int, size: int):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(n_rows, 4, generator=g)
    y = x @ torch.tensor([1.0, -2.0, 3.0, 0.5]) + 0.1 * torch.randn(n_rows, generator=g)
    return [{"x": x[i:i + size], "y": y[i:i + size]} for i in range(0, n_rows, size)]


def params(t: loop.Trainee) -> torch.Tensor:
    return torch.cat([p.detach().ravel() for p in t.model.parameters()])


@pytest.mark.parametrize("k", [2, 4])
def test_accumulating_k_batches_equals_one_batch_k_times_larger(k):
    small, large = trainee(), trainee()
    cpu = torch.device("cpu")
    # Three optimiser steps each: 3k batches of 8 rows against 3 batches of 8k rows.
    loop.train_epoch(Linear, SimpleNamespace(grad_accumulation=k, learning_rate=0.1), small,
                     batches(24 * k, 8), epoch=0, device=cpu)
    loop.train_epoch(Linear, SimpleNamespace(grad_accumulation=1, learning_rate=0.1), large,
                     batches(24 * k, 8 * k), epoch=0, device=cpu)
    assert torch.allclose(params(small), params(large), atol=1e-6)
    unaccumulated = trainee()
    loop.train_epoch(Linear, SimpleNamespace(learning_rate=0.1), unaccumulated, batches(24 * k, 8), epoch=0, device=cpu)
    assert not torch.allclose(params(unaccumulated), params(large), atol=1e-4), "the test can tell them apart"


def test_a_last_short_group_still_steps():
    t = trainee()
    before = params(t).clone()
    loop.train_epoch(Linear, SimpleNamespace(grad_accumulation=4, learning_rate=0.1), t, batches(16, 8),
                     epoch=0, device=torch.device("cpu"))
    assert not torch.equal(before, params(t))


def test_clipping_bounds_the_gradient_norm():
    t = trainee()
    cfg = SimpleNamespace(grad_clip_norm=0.01, learning_rate=0.1)
    batch = {"x": 100 * torch.ones(8, 4), "y": torch.zeros(8)}
    loop.forward_backward(Linear, cfg, t, batch, device=torch.device("cpu"))
    seen = {}
    original = t.optimizer.step
    t.optimizer.step = lambda: seen.setdefault("norm", torch.cat([p.grad.ravel() for p in t.model.parameters()]).norm())
    loop.optimizer_step(cfg, t)
    t.optimizer.step = original
    assert seen["norm"].item() == pytest.approx(0.01, rel=1e-4)
    assert all(p.grad is None for p in t.model.parameters()), "gradients are cleared after the step"
