"""Trajectory error: an LSTM reads the last moments of a toolpath and predicts the servo's error.

The seed's `RealTimeCorrector`: an LSTM over windows of [x_ref, y_ref, vx_ref, vy_ref] and a
linear head on its last hidden state, predicting [error_x, error_y] in um. Inputs are
standardised inside the model with the training split's scaler (buffers, so an exported model
carries them). The loss (mae, mse, hybrid, huber, ...) is computed on standardised targets, so
its MAE and MSE parts are on one scale whatever the units; every metric is in um.

`val_loss` is the mean squared error of standardised targets for every trial, whatever loss it
trained with, so trials that trained on different losses rank on one scale (it is about 1 - R^2).

Make data with `raysweep data trajectory --out data/trajectory`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from raysweep.datasets import trajectory as trajectory_data
from raysweep.training import metrics
from raysweep.training.config import LossChoice, TrainingConfig, loss_function
from raysweep.workloads.contract import DataCommand, Option

TASK = "regression"
DATA = DataCommand("trajectory", "synthetic toolpaths and servo tracking errors (LSTM windows)",
                   trajectory_data.write, (
    Option("--layers-per-part", "layers_per_part", "layers of each of 4 parts (default 10)", int, 10),
    Option("--seconds-per-layer", "seconds_per_layer", "default 40", float, 40.0),
    Option("--sequence-length", "sequence_length", "samples per window (default 20, at 100 Hz)", int, 20),
    Option("--stride", "stride", "samples between window starts (default 4)", int, 4),
))
REGRESSION_LOSSES = ("mse", "mae", "huber", "hybrid", "mape")
CHOICES = {"loss": REGRESSION_LOSSES}
METRICS = {"val_loss": "min", "train_loss": "min", "val_mae": "min", "val_rmse": "min", "val_r2": "max",
           "val_mae_x": "min", "val_mae_y": "min", "val_rmse_x": "min", "val_rmse_y": "min",
           "val_r2_x": "max", "val_r2_y": "max", "val_p50": "min", "val_p90": "min", "val_p95": "min",
           "val_p99": "min", "latency_ms": "min", "throughput_rows_per_s": "max"}


@dataclass(frozen=True)
class Config(TrainingConfig, LossChoice):
    """The seed's recommended run: 56 x 2 LSTM, hybrid loss (alpha 0.7), batch 256, lr 1e-3."""

    epochs: int = 20
    batch_size: int = 256
    loss: str = "hybrid"
    hidden_size: int = 56
    num_layers: int = 2
    dropout: float = 0.1


class TrajectoryLSTM(nn.Module):
    def __init__(self, *, n_features: int, n_targets: int, sequence_length: int, hidden_size: int,
                 num_layers: int, dropout: float, feature_mean: list[float], feature_std: list[float],
                 target_mean: list[float], target_std: list[float]):
        super().__init__()
        self.sequence_length, self.n_features = sequence_length, n_features
        for name, values in (("feature_mean", feature_mean), ("feature_std", feature_std),
                             ("target_mean", target_mean), ("target_std", target_std)):
            self.register_buffer(name, torch.tensor(values, dtype=torch.float32))
        # nn.LSTM's dropout acts between layers only; one layer has none to apply.
        self.lstm = nn.LSTM(n_features, hidden_size, num_layers=num_layers, batch_first=True,
                            dropout=dropout if num_layers > 1 else 0.0)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden_size, n_targets)

    def standardised(self, features: torch.Tensor) -> torch.Tensor:
        """Predicted targets in standard units; `features` is (batch, sequence_length * n_features)."""
        x = features.view(-1, self.sequence_length, self.n_features)
        x = (x - self.feature_mean) / self.feature_std
        out, _ = self.lstm(x)
        return self.head(self.dropout(out[:, -1]))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Predicted [error_x, error_y] in um."""
        return self.standardised(features) * self.target_std + self.target_mean


def build_model(cfg: Config, meta: dict) -> TrajectoryLSTM:
    return TrajectoryLSTM(
        n_features=len(meta["feature_names"]), n_targets=len(meta["target_names"]),
        sequence_length=meta["sequence_length"], hidden_size=cfg.hidden_size, num_layers=cfg.num_layers,
        dropout=cfg.dropout, feature_mean=meta["scaler"]["mean"], feature_std=meta["scaler"]["std"],
        target_mean=meta["target_scaler"]["mean"], target_std=meta["target_scaler"]["std"])


def compute_loss(model: TrajectoryLSTM, batch: dict, cfg: Config) -> tuple[torch.Tensor, torch.Tensor]:
    predicted = model.standardised(batch["features"])
    target = (batch["labels"] - model.target_mean) / model.target_std
    return loss_function(cfg)(predicted, target), predicted


def predict(model: TrajectoryLSTM, batch: dict) -> torch.Tensor:
    return model(batch["features"])


def model_inputs(meta: dict) -> list[str]:
    """The batch columns `predict` reads, in the order an exported model takes them."""
    return ["features"]


def compute_metrics(predicted: np.ndarray, true: np.ndarray, meta: dict) -> dict[str, float]:
    """Errors in um, overall and per axis, and percentiles of the absolute error (both axes pooled)."""
    out = {"val_loss": metrics.standardised_mse(true, predicted)}
    out.update({f"val_{k}": v for k, v in metrics.regression(true, predicted).items()})
    for axis, name in enumerate(("x", "y")):
        out.update({f"val_{k}_{name}": v for k, v in metrics.regression(true[:, axis], predicted[:, axis]).items()})
    absolute = np.abs(predicted - true).ravel()
    out.update({f"val_p{q}": float(np.percentile(absolute, q)) for q in (50, 90, 95, 99)})
    return out
