"""scikit-learn's LogisticRegression: standardised numeric columns, one-hot categories, L2 penalty.

The linear baseline of seed 002. It fits once (`BOOSTED` False) on the CPUs of the trial.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from raysweep.estimators import sklearn_io
from raysweep.estimators.contract import Table, class_probabilities

PREFIX = "logreg_"
TASKS = ("binary", "multiclass")
BOOSTED = False
FILE = "model.skops"


def fit(cfg: Any, table: Table, *, threads: int, rounds: int, model: Any | None = None) -> Any:
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    columns = ColumnTransformer([("numeric", StandardScaler(), list(range(table.n_numeric))),
                                 ("categorical", OneHotEncoder(handle_unknown="ignore"), table.categorical)])
    pipeline = Pipeline([("columns", columns),
                         ("model", LogisticRegression(C=cfg.logreg_C, max_iter=cfg.logreg_max_iter,
                                                      random_state=cfg.seed))])
    weights = table.sample_weights(cfg.class_weight)
    return pipeline.fit(table.features, table.target, model__sample_weight=weights)


def predict(model: Any, features: np.ndarray, task: str, n_classes: int) -> np.ndarray:
    return class_probabilities(model.predict_proba(features), task, n_classes, model.classes_)


def save(model: Any, path: Path) -> None:
    sklearn_io.save(model, path)


def load(path: Path) -> Any:
    return sklearn_io.load(path)
