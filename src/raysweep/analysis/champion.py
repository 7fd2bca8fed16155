"""The champion of an experiment: its best trial that neither errored nor diverged, and its model.

A trial that diverged after a good first epoch is not a model to deploy, so failed trials never
win; nor, where the spec has constraints, does one that breaks them (analysis.pareto: judged at
the epoch its first objective was best). With several objectives the champion is the feasible
Pareto front's best on the first objective, or what a pick asks (analysis.picks: `export --pick
'min val_loss where latency_ms <= 5'`), and `Champion.choice` records how it was chosen.
`best_checkpoint_dir` is the checkpoint that holds its model at its best, and `predictor`
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
from raysweep.analysis import diagnose, leaderboard, pareto, picks, store
from raysweep.analysis.picks import NoneMeets, Pick
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
    # How it was chosen, for the model card (several objectives, constraints or a pick; else None).
    choice: dict | None = None
    # The metric whose best epoch the exported weights come from, where not `metric` (a pick's
    # metric is read at the first objective's best epoch: analysis.pareto).
    checkpoint_on: tuple[str, str] | None = None


def select(experiment_dir: Path, metric: str | None = None, mode: str | None = None,
           trial: str | None = None, pick: Pick | None = None) -> Champion:
    """The best trial on `metric` (default: the spec's) among those that did not fail and meet
    the spec's constraints, or the one `pick` chooses, or `trial`.

    With several objectives or constraints and neither `metric` nor `trial` given, the choice is
    analysis.picks' (the front's best on the first objective where no pick is given). A `trial`
    asked for by id is taken whatever its constraints say.

    Raises:
        NoneMeets: no trial meets the constraints (the spec's or the pick's); nothing to choose.
        SpecError: an unknown trial or metric, a pick that names what the trials do not report.
    """
    s = experiment.load_spec(experiment_dir)
    if pick is not None and (metric is not None or trial is not None):
        raise SpecError([f"--pick {pick.text!r} chooses the trial: leave out --metric, --mode and --trial"])
    if pick is None and trial is None and metric in (None, s.metric) and mode in (None, s.mode) \
            and (s.multi_objective or s.constraints):
        return _chosen(experiment_dir, s, Pick(s.objectives[0]), by_default=True)
    if pick is not None:
        picks.check(pick, s, leaderboard.known_metrics(s, store.load(experiment_dir).trials))
        return _chosen(experiment_dir, s, pick, by_default=False)
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
    elif pareto.FEASIBLE in ok and s.constraints:   # --metric on a constrained spec: the feasible trials only
        if len(ok) and not ok[pareto.FEASIBLE].any():
            raise NoneMeets([f"no trial that did not fail meets the spec's constraints "
                             f"({', '.join(c.text for c in s.constraints)}); nothing to choose"])
        ok = ok[ok[pareto.FEASIBLE].astype(bool)]
    if ok.empty:
        raise SpecError([f"{experiment_dir}: no trial that did not fail reported {metric}; nothing to export"])
    top = ok.sort_values(f"best_{metric}", ascending=(mode == "min"), kind="stable").iloc[0]
    row, config = _row_and_config(experiment_dir, s, top["trial"])
    return Champion(top["trial"], metric, mode, float(top[f"best_{metric}"]), row, config)


def _chosen(experiment_dir: Path, s, chosen_by: Pick, *, by_default: bool) -> Champion:
    """The champion analysis.picks chooses, its weights those of its first objective's best epoch."""
    results = store.load(experiment_dir)
    trials = pareto.annotated(results.trials, results.curves, s)
    if trials.empty:
        raise SpecError([f"{experiment_dir}: no trial has reported yet; nothing to export"])
    chosen = picks.choose(trials, results.curves, s, chosen_by, by_default=by_default)
    row, config = _row_and_config(experiment_dir, s, chosen.trial, trials)
    return Champion(chosen.trial, chosen_by.objective.metric, chosen_by.objective.mode, chosen.value, row, config,
                    choice=chosen.record, checkpoint_on=(s.metric, s.mode))


def _row_and_config(experiment_dir: Path, s, trial_id: str, trials=None) -> tuple[dict, dict]:
    """The trial's row of the results store and its config (the workload's Config fields)."""
    trials = (store.load(experiment_dir).trials if trials is None else trials).set_index("trial")
    row = trials.loc[trial_id].to_dict()
    names = set(field_types(load_workload(s.workload)))
    return row, {k: store.value(row[k]) for k in trials.columns if k in names and not is_missing(row[k])}


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
    """The checkpoint that holds the champion's model at its best (on its first objective, for a
    champion a pick chose: the epoch its values were read at)."""
    metric, mode = best.checkpoint_on or (best.metric, best.mode)
    return best_checkpoint(experiment_dir, best.trial, metric, mode)


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
