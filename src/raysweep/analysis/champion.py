"""The champion of an experiment: its best trial that neither errored nor diverged, and its model.

A trial that diverged after a good first epoch is not a model to deploy, so failed trials never
win. `load_model` rebuilds the champion's model with its best epoch's weights (the `best.pt`
its checkpoints carry); export (raysweep.deploy) writes it out, and the best-trial plots
predict the validation split with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from raysweep import experiment
from raysweep.analysis import diagnose, leaderboard, store
from raysweep.checks import is_missing
from raysweep.datasets import batching, location, shards
from raysweep.spec import SpecError
from raysweep.training import checkpoint
from raysweep.workloads import Workload, config_from_trial, field_types, load_workload

PREDICT_CHUNK_ROWS = 4096


@dataclass
class Champion:
    trial: str
    metric: str
    mode: str
    value: float
    row: dict          # the trial's row of the results store
    config: dict


def select(experiment_dir: Path, metric: str | None = None, mode: str | None = None) -> Champion:
    """The best trial on `metric` (default: the spec's) among those that did not fail."""
    s = experiment.load_spec(experiment_dir)
    metric, mode = metric or s.metric, mode or s.mode
    table = leaderboard.leaderboard(experiment_dir, metric=metric, mode=mode)
    ok = table if table.empty else table[~table["status"].isin(diagnose.FAILED_STATUSES)].dropna(subset=[f"best_{metric}"])
    if ok.empty:
        raise SpecError([f"{experiment_dir}: no trial that did not fail reported {metric}; nothing to export"])
    top = ok.iloc[0]
    trials = store.load(experiment_dir).trials.set_index("trial")
    row = trials.loc[top["trial"]].to_dict()
    names = set(field_types(load_workload(s.workload)))
    config = {k: store.value(row[k]) for k in trials.columns if k in names and not is_missing(row[k])}
    return Champion(top["trial"], metric, mode, float(top[f"best_{metric}"]), row, config)


def best_weights(experiment_dir: Path, trial_id: str) -> dict:
    """The trial's checkpoint payload to deploy: its best epoch's, else its last epoch's."""
    trial = next(t for t in experiment.saved_trials(experiment_dir) if t.trial_id == trial_id)
    directory = experiment.checkpoint_dir(experiment_dir, trial)
    if directory is None or not directory.is_dir():
        keep = experiment.load_spec(experiment_dir).checkpoints.keep_top
        if keep is None:
            raise SpecError([f"trial {trial_id} saved no checkpoint; nothing to export"])
        raise SpecError([f"trial {trial_id} has no checkpoint: its checkpoints were deleted when it ended, since it "
                         f"was not among the {keep} best (checkpoints.keep_top: {keep}), or it saved none; "
                         "export the best trial, or raise keep_top (null keeps all) in the spec of the next sweep"])
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


def read_rows(data_dir: str | Path, meta: dict, split: str, limit: int | None = None) -> dict[str, torch.Tensor]:
    """A split of a Parquet dataset as one batch of tensors (the first `limit` rows)."""
    fmt = meta.get("format", "parquet")
    if fmt != "parquet":
        raise shards.DataError(f"{data_dir} holds {fmt} shards; predict reads Parquet datasets")
    paths = shards.shard_paths(data_dir, split, fmt)
    if not paths:
        raise shards.DataError(f"{location.join(data_dir, split)} holds no Parquet shards")
    table = location.read_parquet(paths, columns=list(dict.fromkeys(meta["columns"].values())))
    return batching.arrow_to_torch(table.slice(0, limit) if limit else table)


def in_chunks(predict_chunk, rows: dict[str, torch.Tensor], size: int = PREDICT_CHUNK_ROWS) -> np.ndarray:
    """Predictions over all rows, `size` at a time, without gradients, as float32 numpy."""
    n = len(next(iter(rows.values())))
    with torch.no_grad():
        return torch.cat([predict_chunk({k: v[i:i + size] for k, v in rows.items()})
                          for i in range(0, n, size)]).float().numpy()


def predictions(experiment_dir: str | Path, split: str = "val"):
    """(champion, workload, meta, outputs, labels) of the best trial on a split of its data."""
    experiment_dir = Path(experiment_dir)
    best = select(experiment_dir)
    workload, meta, model, _ = load_model(experiment_dir, best)
    rows = read_rows(experiment.load_spec(experiment_dir).data.path, meta, split)
    outputs = in_chunks(lambda chunk: workload.predict(model, chunk), rows)
    return best, workload, meta, outputs, rows["labels"].float().numpy()
