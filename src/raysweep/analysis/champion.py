"""The champion of an experiment: its best trial that neither errored nor diverged, and its model.

A trial that diverged after a good first epoch is not a model to deploy, so failed trials never
win. `best_checkpoint_dir` is the checkpoint that holds its model at its best, and `predictor`
loads that model through the workload's kind (raysweep.trainables); export (raysweep.deploy)
writes it out, and the best-trial plots and evaluate predict with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pyarrow as pa
import torch

from raysweep import experiment
from raysweep.analysis import diagnose, leaderboard, store
from raysweep.checks import did_you_mean, is_missing
from raysweep.datasets import batching, location, shards
from raysweep.spec import SpecError
from raysweep.trainables import kind_of
from raysweep.workloads import Workload, config_from_trial, field_types, load_workload


@dataclass
class Champion:
    trial: str
    metric: str
    mode: str
    value: float
    row: dict          # the trial's row of the results store
    config: dict


def select(experiment_dir: Path, metric: str | None = None, mode: str | None = None,
           trial: str | None = None) -> Champion:
    """The best trial on `metric` (default: the spec's) among those that did not fail, or `trial`."""
    s = experiment.load_spec(experiment_dir)
    metric, mode = metric or s.metric, mode or s.mode
    table = leaderboard.leaderboard(experiment_dir, metric=metric, mode=mode)
    ok = table if table.empty else table[~table["status"].isin(diagnose.FAILED_STATUSES)].dropna(subset=[f"best_{metric}"])
    if trial is not None:
        if trial not in set(table["trial"]):
            known = list(table["trial"])
            shown = ", ".join(known[:10]) + (f" and {len(known) - 10} more" if len(known) > 10 else "")
            raise SpecError([f"--trial {trial}: {experiment_dir} has no such trial.{did_you_mean(trial, known)} "
                             f"Its trials: {shown} (raysweep rank lists them)."])
        ok = ok[ok["trial"] == trial]
        if ok.empty:
            raise SpecError([f"--trial {trial} failed or reported no {metric}; it has no model to export"])
    if ok.empty:
        raise SpecError([f"{experiment_dir}: no trial that did not fail reported {metric}; nothing to export"])
    top = ok.iloc[0]
    trials = store.load(experiment_dir).trials.set_index("trial")
    row = trials.loc[top["trial"]].to_dict()
    names = set(field_types(load_workload(s.workload)))
    config = {k: store.value(row[k]) for k in trials.columns if k in names and not is_missing(row[k])}
    return Champion(top["trial"], metric, mode, float(top[f"best_{metric}"]), row, config)


def latest_checkpoint(experiment_dir: Path, trial_id: str) -> Path:
    """The trial's latest checkpoint directory; a clear error where it has none (or lost it to pruning)."""
    directory = experiment.checkpoint_dir(experiment_dir, trial_id)
    if directory is None or not directory.is_dir():
        keep = experiment.load_spec(experiment_dir).checkpoints.keep_top
        if keep is None:
            raise SpecError([f"trial {trial_id} saved no checkpoint; nothing to export"])
        raise SpecError([f"trial {trial_id} has no checkpoint: its checkpoints were deleted when it ended, since it "
                         f"was neither among the {keep} best (checkpoints.keep_top: {keep}) nor the best of its "
                         "scientific values, or it saved none; take one of those, or raise keep_top (null keeps "
                         "all) in the spec of the next sweep"])
    return directory


def best_checkpoint(experiment_dir: Path, trial_id: str, metric: str, mode: str) -> Path:
    """Of the checkpoints the trial kept, the one that holds its model at its best (the
    workload's kind says which: trainables)."""
    latest_checkpoint(experiment_dir, trial_id)   # a clear error where pruning left it none
    kept = experiment.trial_checkpoints(experiment_dir, trial_id)
    workload = load_workload(experiment.load_spec(experiment_dir).workload)
    return kind_of(workload).best_checkpoint(kept, metric, mode)


def best_checkpoint_dir(experiment_dir: Path, best: Champion) -> Path:
    """The checkpoint that holds the champion's model at its best."""
    return best_checkpoint(experiment_dir, best.trial, best.metric, best.mode)


def trial_config(experiment_dir: Path, best: Champion):
    """The champion's Config, as its trial trained it."""
    return config_from_trial(load_workload(experiment.load_spec(experiment_dir).workload), best.config)


def read_columns(data_dir: str | Path, meta: dict, split: str, limit: int | None = None) -> dict[str, np.ndarray]:
    """A split as numpy columns (what a model family predicts from)."""
    return {k: v.numpy() for k, v in read_rows(data_dir, meta, split, limit).items()}


def read_rows(data_dir: str | Path, meta: dict, split: str, limit: int | None = None) -> dict[str, torch.Tensor]:
    """A split of a Parquet dataset as one batch of tensors (the first `limit` rows)."""
    fmt = meta.get("format", "parquet")
    if fmt != "parquet":
        raise shards.DataError(f"{data_dir} holds {fmt} shards; export, predict, evaluate, ensemble and the best-trial "
                               "plots read Parquet datasets: write it again with --format parquet")
    paths = shards.shard_paths(data_dir, split, fmt)
    if not paths:
        raise shards.DataError(f"{location.join(data_dir, split)} holds no Parquet shards")
    try:
        table = location.read_parquet(paths, columns=list(dict.fromkeys(meta["columns"].values())))
    except (pa.ArrowException, OSError) as exc:
        raise shards.DataError(f"the {split} split of {data_dir} cannot be read ({type(exc).__name__}: "
                               f"{str(exc).split(chr(10))[0]}); regenerate or re-import the dataset") from exc
    return batching.arrow_to_torch(table.slice(0, limit) if limit else table)


def predictor(experiment_dir: str | Path, metric: str | None = None,
              mode: str | None = None) -> tuple[Champion, Workload, dict, Callable[[str], tuple]]:
    """(champion, workload, meta, predict): the best trial's model (on `metric`, default the
    spec's), loaded once, and
    `predict(split)` -> (outputs, labels) on a split of its data, outputs as the workload's
    compute_metrics takes them (a PyTorch classifier's logits, a model family's probabilities)."""
    experiment_dir = Path(experiment_dir)
    best = select(experiment_dir, metric, mode)
    s = experiment.load_spec(experiment_dir)
    workload = load_workload(s.workload)
    meta = shards.read_meta(s.data.path)
    try:
        model = kind_of(workload).load_predictor(workload, trial_config(experiment_dir, best), meta,
                                                 best_checkpoint_dir(experiment_dir, best))
    except (ValueError, FileNotFoundError, RuntimeError) as exc:   # an own loop without a model to rebuild, weights gone
        raise SpecError([f"trial {best.trial}: its model cannot be loaded to predict: {exc}"]) from None

    def predict(split: str) -> tuple[np.ndarray, np.ndarray]:
        columns = read_columns(s.data.path, meta, split)
        return model(columns), columns[shards.label_column(meta)].astype(np.float32)

    return best, workload, meta, predict


def predictions(experiment_dir: str | Path, split: str = "val"):
    """(champion, workload, meta, outputs, labels) of the best trial on a split of its data."""
    best, workload, meta, predict = predictor(experiment_dir)
    return (best, workload, meta, *predict(split))


def probabilities(workload: Workload, outputs: np.ndarray) -> np.ndarray:
    """A binary or multilabel classifier's probabilities: a model family predicts them, a PyTorch
    classifier's outputs are logits (the workload's kind knows)."""
    return kind_of(workload).probabilities(outputs)
