"""Model families on any imported table: logistic regression, random forest, LightGBM, XGBoost.

One study across families (seed 002): `family` is a scientific choice and each family's
hyperparameters live under its branch (`when:`), so Optuna's TPE learns each family's space
apart. The families themselves are `raysweep.estimators`; this module is the workload a spec
names (`workload: families`): its Config, metrics, the tables it reads (those `raysweep data
import` writes, the tabular workload's) and what a spec may ask of them.

A boosted family reports every `rounds_per_epoch` rounds for `epochs` epochs, so boosting rounds
are the scheduler's time; logistic regression and random forest fit once and report once, at
the last epoch (`raysweep.estimators.rounds`). Each trial fits on the CPUs it holds
(`resources.cpus_per_worker`: n_jobs, num_threads, nthread).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from raysweep.datasets import shards
from raysweep.estimators import rounds
from raysweep.estimators.contract import CLASS_WEIGHTS, Table
from raysweep.estimators.registry import FAMILIES
from raysweep.training import metrics
from raysweep.workloads import tabular

TASK = None          # the imported table's task, as for the tabular workload
TRAINS_ON = "tabular"   # datasets made for the tabular workload (raysweep data import) are this one's too
DATA = tabular.DATA
TASKS = ("binary", "multiclass", "regression")
METRICS_BY_TASK = {task: metrics.METRICS_BY_TASK[task] + ("fit_seconds",) for task in TASKS}
METRICS = {**metrics.MODES, "fit_seconds": "min"}
CHOICES = {"family": tuple(FAMILIES), "class_weight": CLASS_WEIGHTS}


@dataclass(frozen=True)
class Config:
    family: str = "lightgbm"
    epochs: int = 10                  # reports; a boosted family grows rounds_per_epoch rounds between two
    rounds_per_epoch: int = 20        # boosting rounds per epoch (LightGBM, XGBoost)
    class_weight: str = "none"        # none | balanced (each class weighs n / (classes x its count))
    fbeta_beta: float = 1.0           # the beta of val_fbeta: < 1 weighs precision higher, > 1 recall
    seed: int = 0
    # logistic_regression (L2 penalty)
    logreg_C: float = 1.0             # inverse regularisation strength
    logreg_max_iter: int = 500
    # random_forest
    forest_trees: int = 200
    forest_max_depth: int = 0         # 0: grow until leaves are pure or min_samples_leaf
    forest_min_samples_leaf: int = 1
    forest_max_features: float = 0.5  # share of the columns each split considers
    # lightgbm
    lgbm_learning_rate: float = 0.1
    lgbm_num_leaves: int = 31
    lgbm_min_child_samples: int = 20
    lgbm_feature_fraction: float = 1.0
    lgbm_bagging_fraction: float = 1.0
    lgbm_lambda_l2: float = 0.0
    # xgboost
    xgb_learning_rate: float = 0.3
    xgb_max_depth: int = 6
    xgb_min_child_weight: float = 1.0
    xgb_subsample: float = 1.0
    xgb_colsample_bytree: float = 1.0
    xgb_lambda: float = 1.0


def model_inputs(meta: dict) -> list[str]:
    """The batch columns a model reads: numeric features, then category codes."""
    return tabular.model_inputs(meta)


def table(columns: dict[str, np.ndarray], meta: dict) -> Table:
    """A split's columns (`features`, `categorical`, `labels`) as one float matrix and its labels."""
    labels = np.asarray(columns[shards.label_column(meta)])
    parts = [np.asarray(columns[c], dtype=np.float64).reshape(len(labels), -1) for c in model_inputs(meta)]
    features = np.concatenate(parts, axis=1) if parts else np.zeros((len(labels), 0))
    task = meta["task"]
    return Table(features=features, labels=labels, task=task,
                 n_numeric=len(meta["feature_names"]) if "features" in meta["columns"] else 0,
                 n_classes=len(meta["classes"]) if task == "multiclass" else (2 if task == "binary" else 0))


def fit_trial(cfg: Config, train: dict[str, np.ndarray], val: dict[str, np.ndarray], report: rounds.Report, *,
              meta: dict, threads: int, resume: Path | None = None) -> None:
    """Fit the config's family on the train split and report on val (`raysweep.estimators.rounds`)."""
    rounds.run(cfg, table(train, meta), table(val, meta), report, threads=threads, resume=resume)


def predict(model: Any, family: str, columns: dict[str, np.ndarray], meta: dict) -> np.ndarray:
    """A fitted model's outputs on a split's columns: probabilities, or values for regression."""
    t = table(columns, meta)
    return FAMILIES[family].predict(model, t.features, t.task, t.n_classes)


def compute_metrics(outputs: np.ndarray, labels: np.ndarray, meta: dict) -> dict[str, float]:
    return metrics.for_task(meta["task"], labels, outputs, beta=metrics.beta_of(meta))


def _tuned_values(params: dict, name: str) -> list:
    p = params.get(name)
    return list(p.get("values") or []) if isinstance(p, dict) else []


def spec_problems(meta: dict, fixed: dict, params: dict, metric: str) -> list[tuple[str, str]]:
    """What a spec asks that this table cannot do, or that puts a family's parameter on another's branch."""
    task = meta.get("task")
    if task not in TASKS:
        return [("data.path", f"the model families fit {', '.join(TASKS)} tables, not {task}; "
                              "import the table with another --task, or use workload: tabular")]
    problems = []
    if task == "regression" and len(meta.get("target_names", [])) > 1:
        problems.append(("data.path", "the model families fit one regression target; import the table with one "
                                      "--target, or use workload: tabular for several"))
    families = [("fixed.family", fixed["family"])] if "family" in fixed else []
    families += [("params.family", v) for v in _tuned_values(params, "family")]
    for key, family in families:
        if family in FAMILIES and task not in FAMILIES[family].TASKS:
            problems.append((key, f"{family} does not fit a {task} table; the families that do: "
                                  f"{', '.join(n for n, f in FAMILIES.items() if task in f.TASKS)}"))
    branches = (params.get("family") or {}).get("when") if isinstance(params.get("family"), dict) else None
    for value, subs in (branches or {}).items():
        for name in subs or {}:
            owner = next((n for n, f in FAMILIES.items() if name.startswith(f.PREFIX)), None)
            if owner and owner != value:
                problems.append((f"params.family.when.{value}.{name}",
                                 f"{name} is a {owner} parameter; move it under when.{owner}"))
    if metric not in METRICS_BY_TASK[task]:
        problems.append(("metric", f"a {task} table reports {', '.join(METRICS_BY_TASK[task])}; "
                                   f"{metric!r} is not one of them"))
    return problems

