"""The loop's gradient pieces on CPU: accumulation equals a larger batch; clipping bounds the norm."""

from __future__ import annotations

import copy

import pytest
import torch

from raysweep.training import checkpoint, loop
from raysweep.training.config import TrainingConfig as Cfg


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
    loop.train_epoch(Linear, Cfg(grad_accumulation=k, learning_rate=0.1), small,
                     batches(24 * k, 8), epoch=0, device=cpu)
    loop.train_epoch(Linear, Cfg(grad_accumulation=1, learning_rate=0.1), large,
                     batches(24 * k, 8 * k), epoch=0, device=cpu)
    assert torch.allclose(params(small), params(large), atol=1e-6)
    unaccumulated = trainee()
    loop.train_epoch(Linear, Cfg(learning_rate=0.1), unaccumulated, batches(24 * k, 8), epoch=0, device=cpu)
    assert not torch.allclose(params(unaccumulated), params(large), atol=1e-4), "the test can tell them apart"


def test_a_last_short_group_still_steps():
    t = trainee()
    before = params(t).clone()
    loop.train_epoch(Linear, Cfg(grad_accumulation=4, learning_rate=0.1), t, batches(16, 8),
                     epoch=0, device=torch.device("cpu"))
    assert not torch.equal(before, params(t))


def test_clipping_bounds_the_gradient_norm():
    t = trainee()
    cfg = Cfg(grad_clip_norm=0.01, learning_rate=0.1)
    batch = {"x": 100 * torch.ones(8, 4), "y": torch.zeros(8)}
    loop.forward_backward(Linear, cfg, t, batch, device=torch.device("cpu"))
    seen = {}
    original = t.optimizer.step
    t.optimizer.step = lambda: seen.setdefault("norm", torch.cat([p.grad.ravel() for p in t.model.parameters()]).norm())
    loop.optimizer_step(cfg, t)
    t.optimizer.step = original
    assert seen["norm"].item() == pytest.approx(0.01, rel=1e-4)
    assert all(p.grad is None for p in t.model.parameters()), "gradients are cleared after the step"


# --- early stopping ------------------------------------------------------------------------------

class Drifting:
    """Each epoch trains towards a different target slope; validation wants slope 2.

    Training targets y = c_e * x with c_e = 1, 2, 3, ... for epoch e, so the validation loss is
    best after epoch 2 and worse after every later epoch: early stopping must notice and hand
    back epoch 2's weights.
    """

    METRICS = {"val_loss": "min", "train_loss": "min"}
    compute_loss = Linear.compute_loss

    @staticmethod
    def build_model(cfg, meta):
        return torch.nn.Linear(4, 1)

    @staticmethod
    def predict(model, batch):
        return model(batch["x"]).squeeze(1)

    @staticmethod
    def compute_metrics(pred, labels, meta):
        return {"val_loss": float(((pred - labels) ** 2).mean())}


def drifting_data() -> loop.EpochData:
    g = torch.Generator().manual_seed(2)
    x = torch.randn(256, 4, generator=g)
    w = torch.tensor([1.0, -1.0, 0.5, 2.0])

    def train(epoch):
        return [{"x": x[i:i + 32], "y": (epoch + 1) * x[i:i + 32] @ w} for i in range(0, 256, 32)] * 25

    return loop.EpochData(train=train, val=lambda: [{"x": x, "labels": 2 * x @ w}])


def run(cfg, resume=None):
    cpu = torch.device("cpu")
    trainee = loop.build(Drifting, cfg, {}, device=cpu, resume=resume)
    reports = []
    # Copied as the executors' torch.save would: a state_dict holds the live tensors.
    loop.run_epochs(Drifting, cfg, trainee, drifting_data(), lambda m, f: reports.append((m, copy.deepcopy(f))),
                    device=cpu)
    return trainee, reports


def test_early_stopping_restores_the_best_weights_before_the_final_report():
    cfg = Cfg(epochs=8, learning_rate=0.05, early_stopping_patience=2)
    trainee, reports = run(cfg)
    epochs = [m["epoch"] for m, _ in reports]
    assert epochs == [1, 2, 3, 4], "stops two epochs after the best (epoch 2)"
    losses = [m["val_loss"] for m, _ in reports[:3]]
    assert losses[1] == min(losses) and losses[2] > losses[1] * 10, "the test's data make epoch 2 best"
    final = reports[-1][0]
    assert final["restored_best_epoch"] == 2 and "restored_best_epoch" not in reports[-2][0]
    assert final["val_loss"] == pytest.approx(losses[1], rel=1e-6), "the final result is epoch 2's model"
    epoch2_weights = reports[1][1][checkpoint.LAST_FILE]["model"]
    for name, value in trainee.model.state_dict().items():
        assert torch.equal(value, epoch2_weights[name])
    last_files = reports[3][1]
    assert last_files[checkpoint.BEST_FILE]["epoch"] == 2, "checkpoints hold the best epoch ..."
    assert last_files[checkpoint.LAST_FILE]["epoch"] == 4, "... and the last"
    assert not torch.equal(last_files[checkpoint.LAST_FILE]["model"]["weight"], epoch2_weights["weight"])


def test_without_patience_every_epoch_runs_and_nothing_is_restored():
    _, reports = run(Cfg(epochs=5, learning_rate=0.05))
    assert [m["epoch"] for m, _ in reports] == [1, 2, 3, 4, 5]
    assert "restored_best_epoch" not in reports[-1][0]
    assert reports[-1][1][checkpoint.BEST_FILE]["epoch"] == 2, "the best epoch is still checkpointed"


def test_restores_at_the_last_epoch_when_patience_never_ran_out():
    trainee, reports = run(Cfg(epochs=4, learning_rate=0.05, early_stopping_patience=3))
    assert [m["epoch"] for m, _ in reports] == [1, 2, 3, 4]
    assert reports[-1][0]["restored_best_epoch"] == 2
    assert reports[-1][0]["val_loss"] == pytest.approx(reports[1][0]["val_loss"], rel=1e-6)


def test_a_resumed_trial_keeps_its_early_stopping_record():
    cfg = Cfg(epochs=8, learning_rate=0.05, early_stopping_patience=2)
    _, uninterrupted = run(cfg)
    _, reports = run(cfg, resume=uninterrupted[2][1])   # crash after epoch 3, resume from its checkpoint
    assert [m["epoch"] for m, _ in reports] == [4]
    assert reports[-1][0]["restored_best_epoch"] == 2
    assert reports[-1][0]["val_loss"] == pytest.approx(uninterrupted[-1][0]["val_loss"], rel=1e-6)


class DroppingOut(Drifting):
    """Drifting behind dropout: what it trains depends on torch's random state."""

    @staticmethod
    def build_model(cfg, meta):
        return torch.nn.Sequential(torch.nn.Dropout(0.5), torch.nn.Linear(4, 1))


def test_a_resumed_trial_draws_the_random_numbers_it_would_have_drawn():
    """A trial paused by HyperBand or retried after a fault reports what it would have without
    the break: the checkpoint carries torch's random state, so dropout goes on where it was."""
    cfg, cpu = Cfg(epochs=4, learning_rate=0.05), torch.device("cpu")

    def run_dropping(resume=None):
        trainee = loop.build(DroppingOut, cfg, {}, device=cpu, resume=resume)
        reports = []
        loop.run_epochs(DroppingOut, cfg, trainee, drifting_data(),
                        lambda m, f: reports.append((m, copy.deepcopy(f))), device=cpu)
        return reports

    uninterrupted = run_dropping()
    torch.manual_seed(12345)   # whatever the process drew in between
    resumed = run_dropping(resume=uninterrupted[1][1])   # stopped after epoch 2
    assert [m["epoch"] for m, _ in resumed] == [3, 4]
    assert [m["train_loss"] for m, _ in resumed] == [m["train_loss"] for m, _ in uninterrupted[2:]]


# --- mixed precision -----------------------------------------------------------------------------

def test_mixed_precision_falls_back_to_fp32_on_cpu_with_one_log_line(caplog):
    from raysweep.training import precision

    precision._warned.clear()
    with caplog.at_level("INFO", logger="raysweep"):
        bf16 = run(Cfg(epochs=2, learning_rate=0.05, precision="bf16"))
        run(Cfg(epochs=2, learning_rate=0.05, precision="bf16"))
    fp32 = run(Cfg(epochs=2, learning_rate=0.05))
    assert bf16[0].precision.name == "fp32"
    assert [r.message for r in caplog.records].count("precision bf16 needs a CUDA device; training in fp32 on cpu") == 1
    assert [m["val_loss"] for m, _ in bf16[1]] == [m["val_loss"] for m, _ in fp32[1]]
    with pytest.raises(ValueError, match="Known: fp32, bf16, fp16"):
        precision.choose("fp8", torch.device("cpu"))


def test_loss_scaling_unscales_before_clipping_and_still_trains():
    """The fp16 path's mechanics (scale, unscale, clip, step), run with CPU autocast."""
    from raysweep.training import precision

    t = trainee()
    t.precision = precision.Precision("bf16", "cpu", torch.amp.GradScaler("cpu", init_scale=2.0 ** 12))
    cfg = Cfg(grad_clip_norm=0.01, learning_rate=0.1)
    batch = {"x": 100 * torch.ones(8, 4), "y": torch.zeros(8)}
    loop.forward_backward(Linear, cfg, t, batch, device=torch.device("cpu"))
    scaled = torch.cat([p.grad.ravel() for p in t.model.parameters()]).norm()
    seen = {}
    original = t.optimizer.step
    t.optimizer.step = lambda *a, **k: seen.setdefault("norm", torch.cat([p.grad.ravel() for p in t.model.parameters()]).norm())
    loop.optimizer_step(cfg, t)
    t.optimizer.step = original
    assert scaled > 100, "the loss was scaled up before backward"
    assert seen["norm"].item() == pytest.approx(0.01, rel=1e-3), "clipping saw unscaled gradients"
    before = loop.forward_backward(Linear, cfg, t, batches(64, 64)[0], device=torch.device("cpu"))
    for _ in range(30):
        loop.train_step(Linear, Cfg(learning_rate=0.1), t, batches(64, 64)[0], device=torch.device("cpu"))
    after = loop.forward_backward(Linear, cfg, t, batches(64, 64)[0], device=torch.device("cpu"))
    assert after < before / 2


def test_a_diverged_loss_says_whether_the_data_or_the_learning_rate_is_at_fault():
    data = batches(64, 16)
    data[1]["x"][3, 2] = float("nan")
    with pytest.raises(loop.DivergedError) as bad_data:
        loop.train_epoch(Linear, Cfg(), trainee(), data, epoch=0, device=torch.device("cpu"))
    assert "epoch 1, step 2" in str(bad_data.value) and "x (1 values)" in str(bad_data.value)
    assert loop.BAD_INPUT in str(bad_data.value)

    huge = [{"x": b["x"] * 1e30, "y": b["y"] * 1e30} for b in batches(64, 16)]   # finite inputs, a loss past float32
    with pytest.raises(loop.DivergedError) as too_high:
        loop.train_epoch(Linear, Cfg(learning_rate=10.0), trainee(), huge, epoch=0, device=torch.device("cpu"))
    assert loop.BAD_INPUT not in str(too_high.value) and "Lower learning_rate" in str(too_high.value)
