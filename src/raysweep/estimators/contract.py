"""What a model family provides, and the table it fits on.

A family is a module (`registry.FAMILIES`) with:

- `PREFIX`: its hyperparameters are the workload Config's fields that start with it (`lgbm_`);
- `TASKS`: the tasks it fits; `BOOSTED`: whether `fit` continues a model for more rounds;
- `FILE`: its model's file name: the library's own format where it has one (LightGBM's text
  model, XGBoost's UBJSON), skops for scikit-learn: files that load without unpickling code;
- `fit(cfg, table, *, threads, rounds, model)`, `predict(model, features)`, `save`, `load`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

CLASS_WEIGHTS = ("none", "balanced")


@dataclass(frozen=True)
class Table:
    """One split as numpy: numeric features then category codes, one row per example.

    `labels` are class indices for multiclass, 0/1 for binary, values for regression (one column).
    """

    features: np.ndarray
    labels: np.ndarray
    task: str
    n_numeric: int
    n_classes: int     # multiclass: the number of classes; binary: 2; regression: 0

    @property
    def categorical(self) -> list[int]:
        """Column indices of the category codes (after the numeric features)."""
        return list(range(self.n_numeric, self.features.shape[1]))

    @property
    def target(self) -> np.ndarray:
        """The labels as one column the libraries fit: int classes, or float values."""
        flat = self.labels.reshape(len(self.labels), -1)[:, 0]
        return flat.astype(np.int64) if self.task != "regression" else flat.astype(np.float64)

    def sample_weights(self, class_weight: str) -> np.ndarray | None:
        """'balanced': each class weighs n / (classes x its count), as scikit-learn's class_weight does."""
        if class_weight != "balanced" or self.task == "regression":
            return None
        counts = np.bincount(self.target, minlength=self.n_classes).astype(np.float64)
        weights = len(self.target) / (np.count_nonzero(counts) * np.maximum(counts, 1))
        return weights[self.target]


def class_probabilities(probs: np.ndarray, task: str, n_classes: int, classes: np.ndarray | None = None) -> np.ndarray:
    """A family's predictions in the shape `metrics.for_task` takes: one column (the positive
    class's probability, or the value) for binary and regression, one per class for multiclass.
    `classes` are the class indices the model saw, where that may be fewer than `n_classes`."""
    probs = np.asarray(probs, dtype=np.float64)
    if task != "multiclass":
        return (probs[:, -1] if probs.ndim == 2 else probs).reshape(-1, 1)
    probs = probs.reshape(len(probs), -1)
    if classes is not None and len(classes) < n_classes:
        full = np.zeros((len(probs), n_classes))
        full[:, np.asarray(classes, dtype=np.int64)] = probs
        return full
    return probs


@runtime_checkable
class Family(Protocol):
    PREFIX: str
    TASKS: tuple[str, ...]
    BOOSTED: bool
    FILE: str

    def fit(self, cfg: Any, table: Table, *, threads: int, rounds: int, model: Any | None = None) -> Any:
        """A fitted model: a boosted family adds `rounds` rounds to `model` (None: a new one);
        the others fit anew and ignore `rounds` and `model`."""
        ...

    def predict(self, model: Any, features: np.ndarray, task: str, n_classes: int) -> np.ndarray:
        """Probabilities (classification) or values (regression), shaped as `class_probabilities` says."""
        ...

    def save(self, model: Any, path: Path) -> None:
        ...

    def load(self, path: Path) -> Any:
        ...
