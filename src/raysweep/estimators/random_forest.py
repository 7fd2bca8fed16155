"""scikit-learn's RandomForestClassifier and RandomForestRegressor, trees built on `threads` CPUs.

Category codes are split on as numbers, which trees handle well enough. It fits once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from raysweep.estimators import sklearn_io
from raysweep.estimators.contract import Table, class_probabilities

PREFIX = "forest_"
TASKS = ("binary", "multiclass", "regression")
BOOSTED = False
FILE = "model.skops"
# skops trusts scikit-learn's estimators but not the trees' node storage, whose raw indices a
# tampered file could point out of bounds; raysweep trusts it in the files its trials wrote.
TRUSTED = ("sklearn.tree._tree.Tree",)


def fit(cfg: Any, table: Table, *, threads: int, rounds: int, model: Any | None = None) -> Any:
    from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

    kind = RandomForestRegressor if table.task == "regression" else RandomForestClassifier
    forest = kind(n_estimators=cfg.forest_trees, max_depth=cfg.forest_max_depth or None,
                  min_samples_leaf=cfg.forest_min_samples_leaf, max_features=cfg.forest_max_features,
                  n_jobs=threads, random_state=cfg.seed)
    return forest.fit(table.features, table.target, sample_weight=table.sample_weights(cfg.class_weight))


def predict(model: Any, features: np.ndarray, task: str, n_classes: int) -> np.ndarray:
    if task == "regression":
        return np.asarray(model.predict(features), dtype=np.float64).reshape(-1, 1)
    return class_probabilities(model.predict_proba(features), task, n_classes, model.classes_)


def save(model: Any, path: Path) -> None:
    sklearn_io.save(model, path)


def load(path: Path) -> Any:
    return sklearn_io.load(path, TRUSTED)
