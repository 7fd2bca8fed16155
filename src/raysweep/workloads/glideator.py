"""Glideator: paragliding cross-country forecast as multilabel classification.

The seed's `ExpandedGlideatorNet`: a learnt site embedding joined to standardised site, date and
weather features, a deep & cross network, and one logit per distance threshold ("flight longer
than t km"). The loss adds L1, L2 and a monotonicity penalty to binary cross-entropy, because
P(d > 20 km) can never exceed P(d > 10 km).

Make data with `raysweep data glideator --out data/glideator`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from raysweep.datasets import glideator as glideator_data
from raysweep.training import losses, metrics
from raysweep.training.config import TrainingConfig
from raysweep.workloads.contract import DataCommand, Option

TASK = "multilabel"   # one "flight longer than t km" label per distance threshold
DATA = DataCommand("glideator", "synthetic paragliding XC forecast data", glideator_data.write, (
    Option("--sites", "n_sites", "launch sites (default 60)", int, 60),
    Option("--days", "n_days", "days (default 730)", int, 730),
    Option("--test-fraction", "test_fraction", "the last share of days held out as a test split that no sweep "
           "reads; raysweep evaluate scores the final model on it (default 0.1)", float, 0.1),
))
# String hyperparameters and the values they take; `validate` checks specs against these.
CHOICES = {"architecture": ("dcn", "deep")}
# Reported every epoch; the mode tells `validate` whether a spec's `mode` makes sense.
# A distance threshold per label: the multilabel task's metrics (training/metrics.py).
METRICS = {**{m: metrics.MODES[m] for m in metrics.METRICS_BY_TASK["multilabel"]}, "train_loss": "min"}


@dataclass(frozen=True)
class Config(TrainingConfig):
    """A runnable baseline; a spec's `fixed` and `params` override these by name.

    The training fields (epochs, batch size, schedule, precision, early stopping, ...) come
    from `TrainingConfig`; the seed decays Adam's rate exponentially, hence that default.
    """

    lr_schedule: str = "exponential"
    architecture: str = "dcn"         # dcn: deep & cross towers (the seed's); deep: the deep tower alone
    site_embedding_dim: int = 16
    cross_layers: int = 2             # dcn only
    deep_hidden_units: tuple[int, ...] = (128, 64)
    dropout: float = 0.0
    l1_lambda: float = 1e-9
    l2_lambda: float = 1e-9
    monotonicity_lambda: float = 1e-9


class CrossLayer(nn.Module):
    """DCN-V2 cross layer: x_{l+1} = x0 * (W x_l + b) + x_l (explicit feature crosses)."""

    def __init__(self, width: int):
        super().__init__()
        self.linear = nn.Linear(width, width)

    def forward(self, x0: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return x0 * self.linear(x) + x


class GlideatorNet(nn.Module):
    """Site embedding + standardised features -> cross and deep towers -> one logit per threshold.

    `cross_layers=0, use_cross=False` leaves the deep tower alone: the baseline a study of the
    cross network compares against (`architecture: deep`).
    """

    def __init__(self, n_sites: int, n_features: int, n_targets: int, *,
                 feature_mean: list[float], feature_std: list[float],
                 site_embedding_dim: int = 16, cross_layers: int = 2,
                 deep_hidden_units: tuple[int, ...] = (128, 64), dropout: float = 0.0,
                 use_cross: bool = True):
        super().__init__()
        # Scaler fitted on the training split only; buffers travel with the state_dict.
        self.register_buffer("feature_mean", torch.tensor(feature_mean, dtype=torch.float32))
        self.register_buffer("feature_std", torch.tensor(feature_std, dtype=torch.float32))
        self.site_embedding = nn.Embedding(n_sites, site_embedding_dim)
        width = n_features + site_embedding_dim
        self.cross = nn.ModuleList(CrossLayer(width) for _ in range(cross_layers))
        layers, previous = [], width
        for units in deep_hidden_units:
            layers += [nn.Linear(previous, units), nn.ReLU(), nn.Dropout(dropout)]
            previous = units
        self.deep = nn.Sequential(*layers)
        self.use_cross = use_cross
        self.head = nn.Linear((width if use_cross else 0) + previous, n_targets)

    def forward(self, site_id: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        x = (features - self.feature_mean) / self.feature_std
        x0 = torch.cat([self.site_embedding(site_id.long()), x], dim=1)
        if not self.use_cross:
            return self.head(self.deep(x0))
        crossed = x0
        for layer in self.cross:
            crossed = layer(x0, crossed)
        return self.head(torch.cat([crossed, self.deep(x0)], dim=1))


def build_model(cfg: Config, meta: dict) -> GlideatorNet:
    dcn = cfg.architecture == "dcn"
    return GlideatorNet(
        n_sites=meta["n_sites"], n_features=len(meta["feature_names"]),
        n_targets=len(meta["target_names"]),
        feature_mean=meta["scaler"]["mean"], feature_std=meta["scaler"]["std"],
        site_embedding_dim=cfg.site_embedding_dim, cross_layers=cfg.cross_layers if dcn else 0,
        deep_hidden_units=tuple(cfg.deep_hidden_units), dropout=cfg.dropout, use_cross=dcn)


def monotonicity_penalty(logits: torch.Tensor) -> torch.Tensor:
    """Mean over rows of sum_k relu(P(d > t_{k+1}) - P(d > t_k)); zero iff outputs are monotone."""
    probs = torch.sigmoid(logits)
    return F.relu(probs[:, 1:] - probs[:, :-1]).sum(dim=1).mean()


def weight_norms(model: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    """L1 and squared-L2 norms over weight matrices and embeddings (biases are left alone)."""
    weights = [p for name, p in model.named_parameters() if not name.endswith("bias")]
    l1 = sum(p.abs().sum() for p in weights)
    l2 = sum(p.pow(2).sum() for p in weights)
    return l1, l2


def compute_loss(model: nn.Module, batch: dict, cfg: Config) -> tuple[torch.Tensor, torch.Tensor]:
    """Training objective: BCE + l1 * L1 + l2 * L2 + monotonicity penalty. Returns (loss, logits)."""
    logits = model(batch["site_id"], batch["features"])
    loss = losses.bce(logits, batch["labels"])
    if cfg.l1_lambda or cfg.l2_lambda:
        l1, l2 = weight_norms(model)
        loss = loss + cfg.l1_lambda * l1 + cfg.l2_lambda * l2
    if cfg.monotonicity_lambda:
        loss = loss + cfg.monotonicity_lambda * monotonicity_penalty(logits)
    return loss, logits


def predict(model: nn.Module, batch: dict) -> torch.Tensor:
    return model(batch["site_id"], batch["features"])


def model_inputs(meta: dict) -> list[str]:
    """The batch columns `predict` reads, in the order an exported model takes them."""
    return ["site_id", "features"]


def compute_metrics(logits: np.ndarray, labels: np.ndarray, meta: dict) -> dict[str, float]:
    """Validation metrics from all logits and labels of the split (BCE without penalties)."""
    logits_t, labels_t = torch.from_numpy(logits), torch.from_numpy(labels)
    probs = torch.sigmoid(logits_t).numpy()
    return {**metrics.for_task("multilabel", labels, probs, beta=metrics.beta_of(meta)),
            "val_loss": float(F.binary_cross_entropy_with_logits(logits_t, labels_t))}
