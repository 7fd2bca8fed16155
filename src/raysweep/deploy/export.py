"""`raysweep export` and `raysweep predict`: the champion trial as a model directory to deploy.

    raysweep export results/<experiment> --to champion [--metric val_auc --min-metric 0.8]
    raysweep predict champion --data data/glideator [--split val] [--out predictions.parquet]

The directory holds the best epoch's weights of the best trial (the `best.pt` its checkpoints
carry) as TorchScript (`model.pt`, no raysweep needed to run it) and as a state_dict, the
dataset's `meta.json` (feature names, scalers fitted on train; the model also carries its
scalers as buffers), and `model_card.json`: config, metrics, data, versions and the measured
inference latency. Below a deployment threshold (seed 002 picks its champion against one)
nothing is written and the command exits 1.

Loading it takes three lines (inputs in the order `model_card.json` lists them):

    import torch
    model = torch.jit.load("champion/model.pt")
    logits = model(site_id, features)
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from raysweep import experiment
from raysweep.analysis import champion
from raysweep.datasets import shards
from raysweep.deploy import family_export, model_card
from raysweep.deploy.model_card import (  # noqa: F401 - ThresholdMissed and the file names are export's API too
    CARD_FILE,
    META_FILE,
    ThresholdMissed,
    card_head,
    card_tail,
    outputs_of,
    threshold_check,
)
from raysweep.errors import UserError
from raysweep.trainables import kind_of, torchscript
from raysweep.training.metrics import BETA_KEY
from raysweep.workloads import load_workload

MODEL_FILE, STATE_FILE = torchscript.MODEL_FILE, torchscript.STATE_FILE
EXAMPLE_ROWS = 64   # the rows an export is traced on and proven to predict alike


def export(experiment_dir: str | Path, to: str | Path, *, metric: str | None = None, mode: str | None = None,
           min_metric: float | None = None, trial: str | None = None) -> Path:
    """Write the champion's model directory; raises ThresholdMissed below `min_metric`.

    The champion is chosen by `raysweep.analysis.champion.select` (failed trials never win), or
    is the `trial` asked for; its workload's kind writes the model (trainables: TorchScript, a
    model family's own file, an own loop's state) and says what the card records of it.
    """
    experiment_dir, to = Path(experiment_dir), Path(to)
    s = experiment.load_spec(experiment_dir)
    best = champion.select(experiment_dir, metric, mode, trial=trial)
    threshold_check(best, min_metric)
    workload = load_workload(s.workload)
    kind = kind_of(workload)
    meta = shards.read_meta(s.data.path)
    example = champion.read_columns(s.data.path, meta, "val", EXAMPLE_ROWS)
    try:
        entries = kind.export(workload, champion.trial_config(experiment_dir, best), meta,
                          champion.best_checkpoint_dir(experiment_dir, best), to, example)
    except (ValueError, FileNotFoundError, RuntimeError) as exc:   # an own loop's state without a model, weights gone
        raise UserError(f"trial {best.trial}: its model cannot be exported: {exc}") from None
    shards.write_meta(to, meta)
    card = {
        **card_head(experiment_dir, best, min_metric),
        "kind": kind.name,
        **entries,
        "files": [*entries["files"], META_FILE, CARD_FILE],
        "outputs": outputs_of(meta),
        **card_tail(experiment_dir, s, meta),
    }
    (to / CARD_FILE).write_text(json.dumps(card, indent=2, default=str) + "\n")
    return to


def scoring_meta(card: dict, meta: dict) -> dict:
    """The dataset's meta with the champion's F-beta beta, as its trial scored (metrics.BETA_KEY)."""
    return {**meta, BETA_KEY: card.get("config", {}).get("fbeta_beta", 1.0)}


def predict(model_dir: str | Path, data_dir: str | Path, *, split: str = "val",
            out: str | Path | None = None) -> tuple[pd.DataFrame, dict[str, float]]:
    """Predictions of an exported model on a dataset split; metrics too where it has labels."""
    model_dir = Path(model_dir)
    card_path = model_dir / CARD_FILE
    if not card_path.is_file():
        raise shards.DataError(f"{model_dir} is not an exported model ({CARD_FILE} is missing); "
                               "make one with raysweep export EXPERIMENT_DIR --to DIR")
    card = json.loads(card_path.read_text())
    meta = shards.read_meta(data_dir)
    if "family" in card or "ensemble" in card:
        return family_export.predict(model_dir, card, data_dir, meta, split=split, out=out)
    if not (model_dir / MODEL_FILE).is_file():
        raise UserError(f"{model_dir} holds no TorchScript model ({MODEL_FILE}): its trial's state is what it holds "
                        f"(model_card.json says how to load it); predict runs exported models")
    rows = champion.read_rows(data_dir, meta, split)
    problems = model_card.tensor_input_problems(card, rows)
    if problems:
        raise model_card.data_misfit(card, model_dir, data_dir, problems)
    outputs = torchscript.run_exported(model_dir, card, {k: v.numpy() for k, v in rows.items()})
    columns = card.get("outputs") or [f"output_{k}" for k in range(outputs.shape[1])]
    frame = pd.DataFrame(outputs.reshape(len(outputs), -1), columns=[str(c) for c in columns][:outputs.shape[-1]])
    metrics = {}
    scoring = getattr(load_workload(card["workload"]), "compute_metrics", None)   # an own loop may score itself
    labels = shards.label_column(meta)
    if labels in rows and scoring is not None:
        metrics = scoring(outputs, rows[labels].float().numpy(), scoring_meta(card, meta))
    if out:
        frame.to_parquet(out, index=False)
    return frame, metrics
