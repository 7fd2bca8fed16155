"""Battery health: forecast a cell's state of health (or remaining life) from its last cycles.

The battery seed's trainer, as a raysweep workload: an LSTM or an MLP reads the last `window`
cycles a cycler logged (capacity, resistance, voltage, temperature, charge time; `cells.py`
makes the data) and predicts a *sequence*: the target now and every `cycles_per_step` cycles
after, `horizon` values in all (by default 6, reaching 50 cycles ahead). With `--target soh`
that is the state of health; with `--target rul`, the remaining useful life in cycles.

Why a sequence and not one number: the seed's physics-informed loss regularises along a
sequence of cycles. State of health never rises as a cell ages, and changes smoothly, so the
loss penalises any predicted rise between consecutive steps (`loss_monotonicity_weight`) and
the squared second difference (`loss_smoothness_weight`). Remaining life falls by exactly
`cycles_per_step` per step, so both penalties hold for it too. A single output would leave
them nothing to act on. The measured capacity does rise now and then (noise, regeneration after
a rest), which is where the penalties help a model not to follow it.

The loss is computed on standardised targets, one scalar scaler for every step so that a
sequence that never rises in its units never rises standardised. `val_loss` is the standardised
MSE of every trial whatever loss it trained with, so trials that trained on different losses
rank on one scale; every other metric is in the target's units (SOH as a fraction, RUL in
cycles; MAPE in percent), and `val_rise_share` is the share of predicted steps that rise.

    raysweep data ./examples/battery/battery.py --out data/battery [--target rul]
    raysweep run examples/battery/spec.yaml
"""

from __future__ import annotations

from dataclasses import dataclass

# cells.py, the generator beside this file: raysweep puts the file's folder on the path.
import cells
import numpy as np
import torch
from torch import nn

from raysweep.training import metrics
from raysweep.training.config import LossChoice, loss_function
from raysweep.workloads import DataCommand, Option, TrainingConfig

NAME = "battery"          # what the dataset's meta.json records; validate checks it
TASK = "regression"
DATA = DataCommand("battery", "synthetic cycling data of lithium-ion cells, fading with a knee", cells.write, (
    Option("--target", "target", "soh (state of health) or rul (remaining useful life); default soh", str, "soh",
           choices=tuple(cells.TARGETS)),
    Option("--cells", "n_cells", "cells in the fleet, each wholly in train, val or test (70/15/15; default 40)",
           int, 40),
    Option("--window", "window", "cycles each sample reads (default 20)", int, 20),
    Option("--horizon", "horizon", "values predicted per sample (default 6)", int, 6),
    Option("--cycles-per-step", "cycles_per_step", "cycles between predicted values (default 10)", int, 10),
    Option("--stride", "stride", "cycles between windows (default 5)", int, 5),
))
MODELS = ("lstm", "mlp")
CHOICES = {"model": MODELS, "loss": ("mse", "mae", "huber", "physics_informed"), "loss_base": ("mse", "mae", "huber")}
METRICS = {"val_loss": "min", "train_loss": "min", "val_rmse": "min", "val_mae": "min", "val_mape": "min",
           "val_r2": "max", "val_r2_last": "max", "val_rise_share": "min"}


@dataclass(frozen=True)
class Config(TrainingConfig, LossChoice):
    """The seed's trainer (weight decay 0.01, gradient clip 1.0, cosine annealing with warm
    restarts, early stopping, physics-informed loss), its epochs scaled to the demo data."""

    epochs: int = 30                  # the seed's 200 with patience 20; the demo data needs far fewer
    batch_size: int = 32
    learning_rate: float = 1e-3
    weight_decay: float = 0.01
    lr_schedule: str = "cosine_restarts"
    lr_t0: int = 10                   # the seed's scheduler_T0 (50 of 200 epochs), in proportion
    lr_t_mult: int = 2                # periods T0, 2 T0, 4 T0, as the seed's scheduler
    grad_clip_norm: float = 1.0
    early_stopping_patience: int = 8
    loss: str = "physics_informed"
    loss_base: str | None = None                   # physics_informed: the loss under the penalties (mse)
    loss_monotonicity_weight: float | None = 0.1   # physics_informed: weight of predicted rises
    loss_smoothness_weight: float | None = 0.05    # physics_informed: weight of squared second differences
    model: str = "lstm"               # lstm | mlp
    hidden_size: int = 64
    num_layers: int = 2
    dropout: float = 0.1


class LastState(nn.Module):
    """An LSTM over the window and a linear head on its last hidden state."""

    def __init__(self, *, n_features: int, n_outputs: int, hidden_size: int, num_layers: int, dropout: float):
        super().__init__()
        # nn.LSTM's dropout acts between layers only; one layer has none to apply.
        self.lstm = nn.LSTM(n_features, hidden_size, num_layers=num_layers, batch_first=True,
                            dropout=dropout if num_layers > 1 else 0.0)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(hidden_size, n_outputs))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(x)
        return self.head(out[:, -1])


def mlp(*, n_inputs: int, n_outputs: int, hidden_size: int, num_layers: int, dropout: float) -> nn.Sequential:
    """The whole window flattened, then `num_layers` hidden layers of `hidden_size`."""
    layers: list[nn.Module] = [nn.Flatten()]
    for i in range(num_layers):
        layers += [nn.Linear(n_inputs if i == 0 else hidden_size, hidden_size), nn.ReLU(), nn.Dropout(dropout)]
    return nn.Sequential(*layers, nn.Linear(hidden_size, n_outputs))


class HealthForecaster(nn.Module):
    """Standardises the window with the training split's scaler, runs `net`, and returns the
    target in its units. The scalers are buffers, so an exported model carries them."""

    def __init__(self, net: nn.Module, *, feature_mean: list[float], feature_std: list[float],
                 target_mean: float, target_std: float):
        super().__init__()
        self.net = net
        for name, values in (("feature_mean", feature_mean), ("feature_std", feature_std),
                             ("target_mean", target_mean), ("target_std", target_std)):
            self.register_buffer(name, torch.tensor(values, dtype=torch.float32))

    def standardised(self, features: torch.Tensor) -> torch.Tensor:
        """Predicted targets in standard units; `features` is (batch, window, n_features)."""
        return self.net((features - self.feature_mean) / self.feature_std)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.standardised(features) * self.target_std + self.target_mean


def build_model(cfg: Config, meta: dict) -> HealthForecaster:
    n_features, horizon = len(meta["feature_names"]), meta["horizon"]
    sizes = dict(n_outputs=horizon, hidden_size=cfg.hidden_size, num_layers=cfg.num_layers, dropout=cfg.dropout)
    if cfg.model == "lstm":
        net = LastState(n_features=n_features, **sizes)
    elif cfg.model == "mlp":
        net = mlp(n_inputs=meta["window"] * n_features, **sizes)
    else:
        raise ValueError(f"unknown model {cfg.model!r}; known: {', '.join(MODELS)}")
    return HealthForecaster(net, feature_mean=meta["scaler"]["mean"], feature_std=meta["scaler"]["std"],
                            target_mean=meta["target_scaler"]["mean"], target_std=meta["target_scaler"]["std"])


def compute_loss(model: HealthForecaster, batch: dict, cfg: Config) -> tuple[torch.Tensor, torch.Tensor]:
    """The configured loss on standardised targets; `loss_function` passes each `loss_*` field
    the chosen loss takes (physics_informed: base, monotonicity_weight, smoothness_weight)."""
    predicted = model.standardised(batch["features"])
    target = (batch["labels"] - model.target_mean) / model.target_std
    return loss_function(cfg)(predicted, target), predicted


def predict(model: HealthForecaster, batch: dict) -> torch.Tensor:
    return model(batch["features"])


def model_inputs(meta: dict) -> list[str]:
    """The batch columns `predict` reads, in the order an exported model takes them."""
    return ["features"]


def compute_metrics(predicted: np.ndarray, true: np.ndarray, meta: dict) -> dict[str, float]:
    """Errors over every step in the target's units, R^2 of the furthest step, and the share of rises."""
    predicted, true = predicted.astype(np.float64), true.astype(np.float64)
    regression = metrics.regression(true, predicted)
    relative = np.abs(predicted - true) / np.maximum(np.abs(true), meta["mape_floor"])
    return {"val_loss": metrics.standardised_mse(true, predicted), "val_rmse": regression["rmse"],
            "val_mae": regression["mae"], "val_mape": float(100.0 * relative.mean()), "val_r2": regression["r2"],
            "val_r2_last": metrics.regression(true[:, -1], predicted[:, -1])["r2"],
            "val_rise_share": float((np.diff(predicted, axis=1) > 0).mean()) if true.shape[1] > 1 else 0.0}
