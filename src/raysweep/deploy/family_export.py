"""Predict with a model family's exported champion (workload: families), or an ensemble of them.

    champion/
      model.txt | model.ubj | model.skops   LightGBM's text model, XGBoost's UBJSON, skops (scikit-learn)
      meta.json                             feature names and order, classes, task
      model_card.json                       champion, metrics, config, how to load, decision threshold

Each loads with its own library and no raysweep, without unpickling code (`model.load` in the
card says how; trainables/model_families.py writes them). A model takes one matrix: the numeric
features, then the category codes, in the order `inputs` lists them. For a binary table the
card's `decision_threshold` is the probability above which the champion's F-beta was best on
validation: the operating point to deploy.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from raysweep.analysis import champion
from raysweep.datasets import shards
from raysweep.deploy import ensemble
from raysweep.deploy.model_card import (
    data_misfit,
    family_input_problems,
)
from raysweep.estimators.registry import FAMILIES
from raysweep.training.metrics import BETA_KEY
from raysweep.workloads import families


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
    labels = shards.label_column(meta)
    if labels in columns:
        scoring = {**meta, BETA_KEY: card.get("config", {}).get("fbeta_beta", 1.0)}
        scores = families.compute_metrics(outputs, columns[labels], scoring)
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
