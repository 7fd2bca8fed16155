"""LightGBM: gradient-boosted trees grown `rounds` at a time, categories split natively.

Saved as LightGBM's text model (`lightgbm.Booster(model_file=...)` loads it). `deterministic`
and row-wise histograms make a seed give the same trees on any machine with the same threads.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from raysweep.estimators.contract import Table, class_probabilities

PREFIX = "lgbm_"
TASKS = ("binary", "multiclass", "regression")
BOOSTED = True
FILE = "model.txt"
OBJECTIVES = {"binary": "binary", "multiclass": "multiclass", "regression": "regression"}


def parameters(cfg: Any, table: Table, threads: int) -> dict:
    params = {"objective": OBJECTIVES[table.task], "learning_rate": cfg.lgbm_learning_rate,
              "num_leaves": cfg.lgbm_num_leaves, "min_child_samples": cfg.lgbm_min_child_samples,
              "feature_fraction": cfg.lgbm_feature_fraction, "bagging_fraction": cfg.lgbm_bagging_fraction,
              "bagging_freq": 1 if cfg.lgbm_bagging_fraction < 1 else 0, "lambda_l2": cfg.lgbm_lambda_l2,
              "num_threads": threads, "seed": cfg.seed, "deterministic": True, "force_row_wise": True,
              "verbosity": -1}
    if table.task == "multiclass":
        params["num_class"] = table.n_classes
    return params


def fit(cfg: Any, table: Table, *, threads: int, rounds: int, model: Any | None = None) -> Any:
    import lightgbm  # imported by the trials that fit it: see raysweep.estimators

    data = lightgbm.Dataset(table.features, table.target, weight=table.sample_weights(cfg.class_weight),
                            categorical_feature=table.categorical, free_raw_data=False)
    return lightgbm.train(parameters(cfg, table, threads), data, num_boost_round=rounds, init_model=model,
                          keep_training_booster=True)


def predict(model: Any, features: np.ndarray, task: str, n_classes: int) -> np.ndarray:
    return class_probabilities(model.predict(features), task, n_classes)


def save(model: Any, path: Path) -> None:
    model.save_model(str(path))


def load(path: Path) -> Any:
    import lightgbm

    return lightgbm.Booster(model_file=str(path))
