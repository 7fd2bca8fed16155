"""The champion of an experiment: its best trial that neither errored nor diverged, and its model.

A trial that diverged after a good first epoch is not a model to deploy, so failed trials never
win. `load_model` rebuilds the champion's model with its best epoch's weights (the `best.pt`
its checkpoints carry); export (raysweep.deploy) writes it out, and the best-trial plots
predict the validation split with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pyarrow as pa
import torch

from raysweep import experiment
from raysweep.analysis import diagnose, leaderboard, store
from raysweep.checks import did_you_mean, is_missing
from raysweep.datasets import batching, location, shards
from raysweep.estimators import checkpoint as fitted
from raysweep.spec import SpecError
from raysweep.training import checkpoint
from raysweep.workloads import Workload, config_from_trial, field_types, fits_estimators, load_workload

PREDICT_CHUNK_ROWS = 4096


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


def best_weights(experiment_dir: Path, trial_id: str) -> dict:
    """The trial's checkpoint payload to deploy: its best epoch's, else its last epoch's."""
    directory = latest_checkpoint(experiment_dir, trial_id)
    weights = checkpoint.model_weights(directory)
    if weights is None:
        raise SpecError([f"{directory} holds no model weights ({checkpoint.BEST_FILE} or {checkpoint.LAST_FILE})"])
    return weights


def load_model(experiment_dir: Path, best: Champion) -> tuple[Workload, dict, torch.nn.Module, dict]:
    """(workload, meta, model, checkpoint payload): the champion's model with its best epoch's
    weights, in eval mode, on the CPU."""
    s = experiment.load_spec(experiment_dir)
    workload = load_workload(s.workload)
    meta = shards.read_meta(s.data.path)
    cfg = config_from_trial(workload, best.config)
    payload = best_weights(experiment_dir, best.trial)
    model = workload.build_model(cfg, meta)
    model.load_state_dict(payload["model"])
    model.eval().requires_grad_(False)
    return workload, meta, model, payload


def best_fitted(experiment_dir: Path, best: Champion) -> tuple[str, Any, dict, Path]:
    """(family, model, state, directory) of a model family's champion: of the checkpoints its
    trial kept (Tune keeps the two best by the spec's metric), the one best on `best.metric`."""
    latest = latest_checkpoint(experiment_dir, best.trial)
    kept = [d for d in sorted(latest.parent.glob("checkpoint_*")) if fitted.holds_model(d)] or [latest]

    def score(directory: Path) -> float:
        value = fitted.state(directory).get("metrics", {}).get(best.metric)
        value = float("nan") if value is None else float(value)
        return -np.inf if np.isnan(value) else (value if best.mode == "max" else -value)

    directory = max(kept, key=score)
    family, model, state = fitted.load(directory)
    return family, model, state, directory


def best_checkpoint_dir(experiment_dir: Path, best: Champion) -> Path:
    """The checkpoint that holds the champion's model at its best: a model family's best kept
    checkpoint, a PyTorch trial's latest (its best epoch's weights are in it, best.pt)."""
    if fits_estimators(load_workload(experiment.load_spec(experiment_dir).workload)):
        return best_fitted(experiment_dir, best)[3]
    return latest_checkpoint(experiment_dir, best.trial)


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


def in_chunks(predict_chunk, rows: dict[str, torch.Tensor], size: int = PREDICT_CHUNK_ROWS) -> np.ndarray:
    """Predictions over all rows, `size` at a time, without gradients, as float32 numpy."""
    n = len(next(iter(rows.values())))
    with torch.no_grad():
        return torch.cat([predict_chunk({k: v[i:i + size] for k, v in rows.items()})
                          for i in range(0, n, size)]).float().numpy()


def predictor(experiment_dir: str | Path) -> tuple[Champion, Workload, dict, Callable[[str], tuple]]:
    """(champion, workload, meta, predict): the best trial's model, loaded once, and
    `predict(split)` -> (outputs, labels) on a split of its data, outputs as the workload's
    compute_metrics takes them (logits of a PyTorch classifier, probabilities of a model family)."""
    experiment_dir = Path(experiment_dir)
    best = select(experiment_dir)
    s = experiment.load_spec(experiment_dir)
    workload = load_workload(s.workload)
    if fits_estimators(workload):
        meta = shards.read_meta(s.data.path)
        family, model, _, _ = best_fitted(experiment_dir, best)

        def predict(split: str) -> tuple[np.ndarray, np.ndarray]:
            columns = read_columns(s.data.path, meta, split)
            return workload.predict(model, family, columns, meta), columns["labels"].astype(np.float32)

        return best, workload, meta, predict
    workload, meta, model, _ = load_model(experiment_dir, best)

    def predict(split: str) -> tuple[np.ndarray, np.ndarray]:
        rows = read_rows(s.data.path, meta, split)
        return in_chunks(lambda chunk: workload.predict(model, chunk), rows), rows["labels"].float().numpy()

    return best, workload, meta, predict


def predictions(experiment_dir: str | Path, split: str = "val"):
    """(champion, workload, meta, outputs, labels) of the best trial on a split of its data."""
    best, workload, meta, predict = predictor(experiment_dir)
    return (best, workload, meta, *predict(split))


def probabilities(workload: Workload, outputs: np.ndarray) -> np.ndarray:
    """A binary or multilabel classifier's probabilities: a model family predicts them, a PyTorch
    classifier's outputs are logits."""
    return outputs if fits_estimators(workload) else 1 / (1 + np.exp(-outputs))
