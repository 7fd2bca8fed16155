"""Any table: an MLP over standardised numeric columns and embeddings of categorical ones.

Trains on what `raysweep data import` writes. The task recorded in `meta.json` picks the head,
the default loss and the metrics:

- regression: one output per target, trained on standardised targets (so losses of several
  targets weigh alike); metrics in the targets' units; `val_loss` is the scale-free MSE
  (mean over targets of MSE / variance), as for the trajectory workload;
- binary and multilabel: one logit per label; BCE or focal loss; AUC, accuracy at 0.5, ECE;
- multiclass: one logit per class; cross-entropy; accuracy.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from raysweep.datasets import tabular as tabular_data
from raysweep.training import metrics
from raysweep.training.config import LossChoice, TrainingConfig, loss_function
from raysweep.workloads.contract import TASKS, DataCommand, Option


def _columns(text: str) -> list[str]:
    """`COL,COL,...` on the command line -> a list of column names."""
    return [x.strip() for x in text.split(",") if x.strip()]


TASK = None   # the imported table's task, recorded in its meta.json
DATA = DataCommand("import", "your own CSV or Parquet table, for the tabular workload", tabular_data.import_table, (
    Option("path", "path", "a .csv, .tsv or .parquet file", metavar="FILE"),
    Option("--target", "target", "the column(s) to predict", _columns, required=True, metavar="COL[,COL...]"),
    Option("--task", "task", "", required=True, choices=TASKS),
    Option("--categorical", "categorical", "columns to embed as categories (text columns must be listed)",
           _columns, [], metavar="COL[,COL...]"),
    Option("--drop", "drop", "columns to leave out (ids, leaks of the target)", _columns, [], metavar="COL[,COL...]"),
    Option("--split-by", "split_by", "a train/val column, or groups (dates, sites) whose last --val-fraction go to val",
           metavar="COL"),
    Option("--val-fraction", "val_fraction", "share of rows or groups for val (default 0.2)", float, 0.2),
    Option("--test-fraction", "test_fraction", "share of rows or groups held out as a test split that no sweep "
           "reads; raysweep evaluate scores the final model on it (default 0: none)", float, 0.0),
    Option("--missing", "missing", "rows with a null, NaN or infinite feature or target: refuse them (default), "
           "drop them, or fill features with the training mean", str, "refuse", choices=tabular_data.MISSING),
))
# The losses that fit each task; "auto" picks the first.
LOSSES_BY_TASK = {"regression": ("mse", "mae", "huber", "hybrid", "mape"),
                  "binary": ("bce", "focal"), "multilabel": ("bce", "focal"),
                  "multiclass": ("cross_entropy",)}
CHOICES = {"loss": ("auto", "mse", "mae", "huber", "hybrid", "mape", "bce", "focal", "cross_entropy")}
# What each task reports (training/metrics.py computes them for every workload of the task).
METRICS_BY_TASK = {task: names + ("train_loss",) for task, names in metrics.METRICS_BY_TASK.items()}
METRICS = {**metrics.MODES, "train_loss": "min"}


@dataclass(frozen=True)
class Config(TrainingConfig, LossChoice):
    epochs: int = 20
    batch_size: int = 256
    loss: str = "auto"                 # auto: mse, bce or cross_entropy by task
    hidden_units: tuple[int, ...] = (128, 64)
    dropout: float = 0.1
    embedding_dim: int = 8             # per categorical column (capped at half its categories + 1)


class TabularNet(nn.Module):
    def __init__(self, *, task: str, n_features: int, cardinalities: list[int], n_outputs: int,
                 feature_mean: list[float], feature_std: list[float], target_mean: list[float],
                 target_std: list[float], hidden_units: tuple[int, ...], dropout: float, embedding_dim: int):
        super().__init__()
        self.task = task
        self.register_buffer("feature_mean", torch.tensor(feature_mean, dtype=torch.float32))
        self.register_buffer("feature_std", torch.tensor(feature_std, dtype=torch.float32))
        self.register_buffer("target_mean", torch.tensor(target_mean, dtype=torch.float32))
        self.register_buffer("target_std", torch.tensor(target_std, dtype=torch.float32))
        self.embeddings = nn.ModuleList(nn.Embedding(n, min(embedding_dim, n // 2 + 1)) for n in cardinalities)
        layers, width = [], n_features + sum(e.embedding_dim for e in self.embeddings)
        for units in hidden_units:
            layers += [nn.Linear(width, units), nn.ReLU(), nn.Dropout(dropout)]
            width = units
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(width, n_outputs)

    def raw(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Logits, or regression outputs in standard units."""
        parts = []
        if "features" in batch:
            parts.append((batch["features"] - self.feature_mean) / self.feature_std)
        if "categorical" in batch:
            codes = batch["categorical"].long()
            parts += [emb(codes[:, i]) for i, emb in enumerate(self.embeddings)]
        return self.head(self.body(torch.cat(parts, dim=1)))

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Regression: predictions in the targets' units; classification: logits."""
        out = self.raw(batch)
        return out * self.target_std + self.target_mean if self.task == "regression" else out


def build_model(cfg: Config, meta: dict) -> TabularNet:
    task = meta["task"]
    n_outputs = len(meta["classes"]) if task == "multiclass" else len(meta["target_names"])
    target = meta.get("target_scaler", {"mean": [0.0] * n_outputs, "std": [1.0] * n_outputs})
    return TabularNet(
        task=task, n_features=len(meta["feature_names"]),
        cardinalities=[meta["cardinalities"][c] for c in meta["categorical_names"]], n_outputs=n_outputs,
        feature_mean=meta["scaler"]["mean"], feature_std=meta["scaler"]["std"],
        target_mean=target["mean"], target_std=target["std"], hidden_units=tuple(cfg.hidden_units),
        dropout=cfg.dropout, embedding_dim=cfg.embedding_dim)


def _loss(cfg: Config, task: str):
    if cfg.loss == "auto":
        return loss_function(replace(cfg, loss=LOSSES_BY_TASK[task][0]))
    if cfg.loss not in LOSSES_BY_TASK[task]:
        raise ValueError(f"loss {cfg.loss!r} does not fit a {task} table; use one of "
                         f"{', '.join(LOSSES_BY_TASK[task])} (or auto)")
    return loss_function(cfg)


def compute_loss(model: TabularNet, batch: dict, cfg: Config) -> tuple[torch.Tensor, torch.Tensor]:
    out = model.raw(batch)
    labels = batch["labels"]
    if model.task == "multiclass":
        return _loss(cfg, model.task)(out, labels.long()), out
    if model.task == "regression":
        labels = (labels - model.target_mean) / model.target_std
    return _loss(cfg, model.task)(out, labels), out


def predict(model: TabularNet, batch: dict) -> torch.Tensor:
    return model(batch)


def model_inputs(meta: dict) -> list[str]:
    """The batch columns `predict` reads, in the order an exported model takes them."""
    return [c for c in ("features", "categorical") if c in meta["columns"]]

def compute_metrics(outputs: np.ndarray, labels: np.ndarray, meta: dict) -> dict[str, float]:
    """The task's metrics (`metrics.for_task`) from probabilities; `val_loss` from the logits, exactly."""
    task = meta["task"]
    if task == "regression":
        return metrics.for_task(task, labels, outputs)
    logits = torch.from_numpy(outputs)
    if task == "multiclass":
        probs, loss = torch.softmax(logits, dim=1), F.cross_entropy(logits, torch.from_numpy(labels).long())
    else:
        probs, loss = torch.sigmoid(logits), F.binary_cross_entropy_with_logits(logits, torch.from_numpy(labels))
    return {**metrics.for_task(task, labels, probs.numpy(), beta=metrics.beta_of(meta)), "val_loss": float(loss)}


def spec_problems(meta: dict, fixed: dict, params: dict, metric: str) -> list[tuple[str, str]]:
    """What a spec asks that this table's task cannot do: a loss or metric of another task."""
    task = meta.get("task")
    if task not in LOSSES_BY_TASK:
        return []
    problems = []
    allowed = ("auto",) + LOSSES_BY_TASK[task]
    losses = [("fixed.loss", fixed["loss"])] if "loss" in fixed else []
    losses += [("params.loss", v) for v in (params.get("loss") or {}).get("values", [])]
    for key, value in losses:
        if value not in allowed:
            problems.append((key, f"{value!r} does not fit this {task} table; use one of {', '.join(allowed)}"))
    if metric not in METRICS_BY_TASK[task]:
        problems.append(("metric", f"a {task} table reports {', '.join(METRICS_BY_TASK[task])}; "
                                   f"{metric!r} is not one of them"))
    return problems
