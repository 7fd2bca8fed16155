"""The `families` kind: model families outside PyTorch, fitted in rounds (raysweep.estimators).

The module defines `fit_trial(cfg, train, val, report, *, meta, threads, resume)` (fits on the
whole splits as numpy columns and reports each round with a checkpoint in the family's own
format), `predict(model, family, columns, meta)`, `compute_metrics(outputs, labels, meta)` and
`model_inputs(meta)`; its Config is a plain dataclass with `epochs` and `seed`. Trials fit in
the trial process, one worker each; their models predict probabilities, so they average into
ensembles. Export copies the family's own file (LightGBM's text model, XGBoost's UBJSON, skops).
"""

from __future__ import annotations

import dataclasses
import importlib
import math
import shutil
from pathlib import Path
from typing import Any, Callable, Protocol

import numpy as np

from raysweep.estimators import checkpoint as fitted
from raysweep.estimators.registry import FAMILIES
from raysweep.trainables.contract import Predict, function_problems, signatures
from raysweep.trainables.session import Columns, Session
from raysweep.training import loop
from raysweep.training.metrics import THRESHOLD


class FamiliesWorkload(Protocol):
    """A workload of model families (workloads/families.py is raysweep's own)."""

    Config: type            # a dataclass with at least epochs and seed
    METRICS: dict[str, str]

    def fit_trial(self, cfg: Any, train: Columns, val: Columns, report: Callable, *, meta: dict, threads: int,
                  resume: Path | None = None) -> None:
        """Fit on the train split, report on val each round with a checkpoint writer."""
        ...

    def predict(self, model: Any, family: str, columns: Columns, meta: dict) -> np.ndarray:
        """A fitted model's outputs: probabilities, or values for regression."""
        ...

    def compute_metrics(self, outputs: np.ndarray, labels: np.ndarray, meta: dict) -> dict[str, float]:
        ...

    def model_inputs(self, meta: dict) -> list[str]:
        ...


FUNCTIONS = signatures(FamiliesWorkload, ("fit_trial", "predict", "compute_metrics", "model_inputs"))
# The module each family's file loads with (its __version__ goes in the card: the CPU build of
# XGBoost is installed as the package xgboost-cpu, so package metadata would not find "xgboost").
LIBRARIES = {"logistic_regression": "sklearn", "random_forest": "sklearn", "lightgbm": "lightgbm", "xgboost": "xgboost"}
LOADING = {
    "logistic_regression": 'skops.io.load("model.skops").predict_proba(X)',
    "random_forest": 'skops.io.load("model.skops", trusted=["sklearn.tree._tree.Tree"]).predict_proba(X)  '
                     '# .predict(X) for regression',
    "lightgbm": 'lightgbm.Booster(model_file="model.txt").predict(X)',
    "xgboost": 'xgboost.Booster(model_file="model.ubj").predict(xgboost.DMatrix(X))',
}


def inputs_of(meta: dict) -> list[dict]:
    """A model family's one input: the numeric features, then the category codes, as one matrix."""
    names = [*meta.get("feature_names", []), *meta.get("categorical_names", [])] if "features" in meta["columns"] \
        else list(meta.get("categorical_names", []))
    return [{"name": "X", "dtype": "float64", "columns": names,
             "note": "numeric features, then category codes (meta.json has the codes' categories)"}]


class ModelFamilies:
    name = "families"
    label = "the model families"
    phases: frozenset[str] = frozenset()
    executors = frozenset({"in_trial"})
    reads_its_own_data = False
    gpus = False
    ensembles = True

    def problems(self, module: Any, shown: str) -> list[str]:
        found = function_problems(module, shown, FUNCTIONS)
        config = getattr(module, "Config", None)
        fields = {f.name for f in dataclasses.fields(config)} if dataclasses.is_dataclass(config) else set()
        if not {"epochs", "seed"} <= fields:
            found.append(f"{shown}: Config must be a dataclass with at least epochs and seed (its defaults are a "
                         "runnable baseline)")
        return found

    def run(self, module: Any, cfg: Any, session: Session) -> None:
        module.fit_trial(cfg, session.data.whole("train"), session.data.whole("val"), session.report,
                         meta=session.meta, threads=session.threads, resume=session.resumed)

    def parameters(self, module: Any, cfg: Any, meta: dict) -> int | None:
        return None   # a fitted model's size does not follow from a baseline's parameters

    def best_checkpoint(self, checkpoints: list[Path], metric: str, mode: str) -> Path:
        """Of the checkpoints the trial kept (Tune keeps the two best by the spec's metric), the one
        best on `metric`."""
        kept = [d for d in checkpoints if fitted.holds_model(d)] or checkpoints[-1:]

        def score(directory: Path) -> float:
            value = fitted.state(directory).get("metrics", {}).get(metric)
            value = math.nan if value is None else float(value)
            return -math.inf if math.isnan(value) else (value if mode == "max" else -value)

        return max(kept, key=score)

    def load_predictor(self, module: Any, cfg: Any, meta: dict, directory: Path) -> Predict:
        family, model, _ = fitted.load(directory)
        return lambda columns: module.predict(model, family, columns, meta)

    def probabilities(self, outputs: np.ndarray) -> np.ndarray:
        return outputs   # a family predicts probabilities

    def export(self, module: Any, cfg: Any, meta: dict, directory: Path, to: Path, example: Columns, *,
               formats: tuple[str, ...] | None = None, check: Columns | None = None) -> dict:
        family, model, state = fitted.load(directory)
        file = FAMILIES[family].FILE
        if formats is not None:
            raise ValueError(f"--format {' and '.join(formats)} is for PyTorch models; a {family} model is exported as "
                             f"its library's own file ({file}): leave --format out")
        to.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(directory / file, to / file)
        copy = FAMILIES[family].load(to / file)
        if not np.allclose(module.predict(copy, family, example, meta), module.predict(model, family, example, meta),
                           rtol=1e-5, atol=1e-7):
            raise RuntimeError(f"the exported {file} predicts otherwise than the trial's model; please report this")
        one = {k: v[:1] for k, v in example.items()}
        latency_s = loop.median_seconds(lambda: module.predict(copy, family, one, meta), repeats=20, warmup=2)
        batch = {k: np.resize(v, (1024, *v.shape[1:])) for k, v in example.items()}
        batch_s = loop.median_seconds(lambda: module.predict(copy, family, batch, meta), repeats=3, warmup=1)
        library = LIBRARIES[family]
        return {"family": family, "files": [file],
                "model": {"file": file, "library": f"{library} {importlib.import_module(library).__version__}",
                          "load": LOADING[family], "epoch": state["epoch"], "rounds": state.get("rounds"),
                          "metrics": state.get("metrics", {}),
                          "note": "of the checkpoints the trial kept, the one best on the champion's metric"},
                "inputs": inputs_of(meta),
                "decision_threshold": state.get("metrics", {}).get(THRESHOLD) if meta.get("task") == "binary" else None,
                "inference": {"device": "cpu", "latency_ms_one_row": round(latency_s * 1e3, 4),
                              "throughput_rows_per_s": round(1024 / batch_s, 1)}}


KIND = ModelFamilies()
