"""XGBoost: histogram gradient boosting grown `rounds` at a time.

Saved in XGBoost's own UBJSON format (`xgboost.Booster(model_file=...)` loads it), which holds
no code. Category codes are split on as numbers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from raysweep.estimators.contract import Table, class_probabilities

PREFIX = "xgb_"
TASKS = ("binary", "multiclass", "regression")
BOOSTED = True
FILE = "model.ubj"
OBJECTIVES = {"binary": "binary:logistic", "multiclass": "multi:softprob", "regression": "reg:squarederror"}


def parameters(cfg: Any, table: Table, threads: int) -> dict:
    params = {"objective": OBJECTIVES[table.task], "eta": cfg.xgb_learning_rate, "max_depth": cfg.xgb_max_depth,
              "min_child_weight": cfg.xgb_min_child_weight, "subsample": cfg.xgb_subsample,
              "colsample_bytree": cfg.xgb_colsample_bytree, "lambda": cfg.xgb_lambda, "tree_method": "hist",
              "nthread": threads, "seed": cfg.seed, "verbosity": 0}
    if table.task == "multiclass":
        params["num_class"] = table.n_classes
    return params


def fit(cfg: Any, table: Table, *, threads: int, rounds: int, model: Any | None = None) -> Any:
    import xgboost  # imported by the trials that fit it: see raysweep.estimators

    data = xgboost.DMatrix(table.features, label=table.target, weight=table.sample_weights(cfg.class_weight),
                           nthread=threads)
    return xgboost.train(parameters(cfg, table, threads), data, num_boost_round=rounds, xgb_model=model)


def predict(model: Any, features: np.ndarray, task: str, n_classes: int) -> np.ndarray:
    import xgboost

    return class_probabilities(model.predict(xgboost.DMatrix(features)), task, n_classes)


def save(model: Any, path: Path) -> None:
    model.save_model(str(path))


def load(path: Path) -> Any:
    import xgboost

    booster = xgboost.Booster()
    booster.load_model(str(path))
    return booster
