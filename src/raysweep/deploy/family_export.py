"""Export and predict for a model family's champion (workload: families): its native model file.

    champion/
      model.txt | model.ubj | model.skops   LightGBM's text model, XGBoost's UBJSON, skops (scikit-learn)
      meta.json                             feature names and order, classes, task
      model_card.json                       champion, metrics, config, how to load, decision threshold

Each loads with its own library and no raysweep, without unpickling code (`model.load` in the
card says how). A model takes one matrix: the numeric features, then the category codes, in the
order `inputs` lists them. For a binary table the card's `decision_threshold` is the probability
above which the champion's F-beta was best on validation: the operating point to deploy.
"""

from __future__ import annotations

import importlib
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from raysweep import experiment
from raysweep.analysis import champion
from raysweep.datasets import shards
from raysweep.deploy import ensemble
from raysweep.deploy.model_card import (
    CARD_FILE,
    META_FILE,
    card_head,
    card_tail,
    data_misfit,
    family_input_problems,
    inputs_of,
    outputs_of,
)
from raysweep.estimators.registry import FAMILIES
from raysweep.training import loop
from raysweep.training.metrics import BETA_KEY, THRESHOLD
from raysweep.workloads import families

EXAMPLE_ROWS = 64
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


def export(experiment_dir: Path, to: Path, best: champion.Champion, min_metric: float | None) -> Path:
    """Copy the champion's model file, prove the copy predicts as the trial's model did, write the card."""
    s = experiment.load_spec(experiment_dir)
    meta = shards.read_meta(s.data.path)
    family, model, state, directory = champion.best_fitted(experiment_dir, best)
    file = FAMILIES[family].FILE
    to.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(directory / file, to / file)
    shards.write_meta(to, meta)

    example = champion.read_columns(s.data.path, meta, "val", EXAMPLE_ROWS)
    copy = FAMILIES[family].load(to / file)
    if not np.allclose(families.predict(copy, family, example, meta), families.predict(model, family, example, meta),
                       rtol=1e-5, atol=1e-7):
        raise RuntimeError(f"the exported {file} predicts otherwise than the trial's model; please report this")
    one = {k: v[:1] for k, v in example.items()}
    latency_s = loop.median_seconds(lambda: families.predict(copy, family, one, meta), repeats=20, warmup=2)
    batch = {k: np.resize(v, (1024, *v.shape[1:])) for k, v in example.items()}
    batch_s = loop.median_seconds(lambda: families.predict(copy, family, batch, meta), repeats=3, warmup=1)
    card = {
        **card_head(experiment_dir, best, min_metric),
        "family": family,
        "files": [file, META_FILE, CARD_FILE],
        "model": {"file": file, "library": f"{LIBRARIES[family]} {importlib.import_module(LIBRARIES[family]).__version__}",
                  "load": LOADING[family], "epoch": state["epoch"], "rounds": state.get("rounds"),
                  "metrics": state.get("metrics", {}),
                  "note": "of the checkpoints the trial kept, the one best on the champion's metric"},
        "inputs": inputs_of(meta),
        "outputs": outputs_of(meta),
        "decision_threshold": state.get("metrics", {}).get(THRESHOLD) if meta.get("task") == "binary" else None,
        "inference": {"device": "cpu", "latency_ms_one_row": round(latency_s * 1e3, 4),
                      "throughput_rows_per_s": round(1024 / batch_s, 1)},
        **card_tail(experiment_dir, s, meta),
    }
    (to / CARD_FILE).write_text(json.dumps(card, indent=2, default=str) + "\n")
    return to


def predict(model_dir: Path, card: dict, data_dir: str | Path, meta: dict, *, split: str,
            out: str | Path | None) -> tuple[pd.DataFrame, dict[str, float]]:
    """A family model's (or an ensemble's) predictions on a split: probabilities, or values for
    regression, and for a binary table the decision at the card's threshold; metrics where the
    split has labels."""
    problems = family_input_problems(card, meta) if "features" in meta.get("columns", {}) or \
        "categorical" in meta.get("columns", {}) else ["it is not a table (raysweep data import writes one)"]
    if problems:
        raise data_misfit(card, model_dir, data_dir, problems)
    columns = champion.read_columns(data_dir, meta, split)
    outputs = outputs_on(Path(model_dir), card, columns, meta)
    frame = frame_of(outputs, card)
    scores = {}
    if "labels" in columns:
        scoring = {**meta, BETA_KEY: card.get("config", {}).get("fbeta_beta", 1.0)}
        scores = families.compute_metrics(outputs, columns["labels"], scoring)
    if out:
        frame.to_parquet(out, index=False)
    return frame, scores


def outputs_on(model_dir: Path, card: dict, columns: dict[str, np.ndarray], meta: dict) -> np.ndarray:
    """What the exported model (a family's file, or an ensemble's members) predicts for the columns."""
    if "ensemble" in card:
        return ensemble.predict_outputs(model_dir, card, columns, meta)
    family = card["family"]
    return families.predict(FAMILIES[family].load(model_dir / FAMILIES[family].FILE), family, columns, meta)


def frame_of(outputs: np.ndarray, card: dict) -> pd.DataFrame:
    """Predictions as a table: one column per output, and the decision at the card's threshold."""
    names = card.get("outputs") or [f"output_{k}" for k in range(outputs.shape[1])]
    frame = pd.DataFrame(outputs, columns=[str(c) for c in names][:outputs.shape[1]])
    if card.get("decision_threshold") is not None:
        frame["decision"] = (outputs[:, 0] >= card["decision_threshold"]).astype(int)
    return frame
