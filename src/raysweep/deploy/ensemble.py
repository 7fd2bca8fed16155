"""`raysweep ensemble`: a soft-voting ensemble of an experiment's best model-family trials.

    raysweep ensemble results/<experiment> --top 3 --to ensemble
    raysweep predict ensemble --data data/my_table

The K best trials that did not fail (any families) vote with their probabilities (their values,
for regression), averaged with equal weights, as seed 002's voting ensemble does. The directory
holds each member's native model file (`members/<trial>/model.*`), the dataset's `meta.json` and
a model card with the members, the ensemble's validation metrics beside the champion's, and
whether it beats the champion: a candidate to deploy in its place. `predict` and `evaluate` take
it as they take an exported champion.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from raysweep import experiment
from raysweep.analysis import champion, diagnose, leaderboard
from raysweep.datasets import shards
from raysweep.deploy.model_card import CARD_FILE, META_FILE, card_tail, outputs_of
from raysweep.errors import UserError
from raysweep.estimators import checkpoint as fitted
from raysweep.estimators.registry import FAMILIES
from raysweep.trainables import kind_of
from raysweep.trainables.model_families import inputs_of
from raysweep.training import metrics
from raysweep.workloads import families, load_workload

MEMBERS_DIR = "members"


def build(experiment_dir: str | Path, to: str | Path, *, top: int) -> dict:
    """Write the ensemble of the `top` best trials to `to`; returns its model card."""
    experiment_dir, to = Path(experiment_dir), Path(to)
    s = experiment.load_spec(experiment_dir)
    workload = load_workload(s.workload)
    kind = kind_of(workload)
    if not kind.ensembles:
        raise UserError(f"raysweep ensemble combines model families' probabilities (workload: families); "
                        f"{experiment_dir} swept {s.workload}, whose trials train with {kind.label}")
    if top < 2:
        raise UserError(f"--top {top}: an ensemble needs at least 2 members")
    table = leaderboard.leaderboard(experiment_dir, metric=s.metric, mode=s.mode)
    ok = table[~table["status"].isin(diagnose.FAILED_STATUSES)].dropna(subset=[f"best_{s.metric}"])
    if "feasible" in ok:   # members meet the spec's constraints; ranked on the first objective, as rank would alone
        ok = ok[ok["feasible"].astype(bool)]
    ok = ok.sort_values(f"best_{s.metric}", ascending=s.mode == "min", kind="stable")
    if len(ok) < 2:
        raise UserError(f"{experiment_dir} has {len(ok)} trial(s) that reported {s.metric}; an ensemble needs 2")
    meta = shards.read_meta(s.data.path)
    val = champion.read_columns(s.data.path, meta, "val")
    beta = float(s.fixed.get("fbeta_beta", families.Config().fbeta_beta))
    members, outputs = [], []
    for trial, value in zip(ok["trial"].head(top), ok[f"best_{s.metric}"].head(top)):
        # the leaderboard row is all a member needs: no second read of the leaderboard per member
        best = champion.Champion(trial, s.metric, s.mode, float(value), row={}, config={})
        directory = champion.best_checkpoint_dir(experiment_dir, best)
        family, model, state = fitted.load(directory)
        file = FAMILIES[family].FILE
        (to / MEMBERS_DIR / trial).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(directory / file, to / MEMBERS_DIR / trial / file)
        outputs.append(families.predict(model, family, val, meta))
        members.append({"trial": trial, "family": family, "file": f"{MEMBERS_DIR}/{trial}/{file}",
                        s.metric: best.value, "epoch": state["epoch"]})
    scores = metrics.for_task(meta["task"], val[shards.label_column(meta)], np.mean(outputs, axis=0), beta=beta)
    shards.write_meta(to, meta)
    champion_value = float(ok[f"best_{s.metric}"].iloc[0])
    value = scores.get(s.metric)
    better = value is not None and (value > champion_value if s.mode == "max" else value < champion_value)
    card = {
        "ensemble": {"voting": "soft", "weights": "equal", "members": members},
        "files": [META_FILE, CARD_FILE, *[m["file"] for m in members]],
        "metric": s.metric, "mode": s.mode, "value": value,
        "champion": {"trial": ok["trial"].iloc[0], "value": champion_value},
        "candidate": bool(better),
        "validation": scores,
        "config": {"fbeta_beta": beta},
        "workload": s.workload,
        "inputs": inputs_of(meta),
        "outputs": outputs_of(meta),
        "decision_threshold": scores.get(metrics.THRESHOLD) if meta.get("task") == "binary" else None,
        **card_tail(experiment_dir, s, meta),
    }
    (to / CARD_FILE).write_text(json.dumps(card, indent=2, default=str) + "\n")
    return card


def predict_outputs(model_dir: Path, card: dict, columns: dict[str, np.ndarray], meta: dict) -> np.ndarray:
    """The members' mean prediction over a split's columns."""
    outputs = []
    for member in card["ensemble"]["members"]:
        model = FAMILIES[member["family"]].load(model_dir / member["file"])
        outputs.append(families.predict(model, member["family"], columns, meta))
    return np.mean(outputs, axis=0)
