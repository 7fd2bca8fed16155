"""One compact results store per experiment: a table of trials and a table of learning curves.

Tune leaves a directory per trial (params, progress.csv, result.json, checkpoints, errors) plus
an experiment state file; loading that back means walking thousands of small files. raysweep
gathers them, during the sweep and after it, into two Parquet files in the experiment directory:

- `trials.parquet`: one row per trial: trial id, every parameter (fixed and tuned) as its own
  column (lists as JSON text; `value()` decodes), status (finished, stopped by ASHA (or
  HyperBand, median rule, BOHB: the scheduler that stopped it), early stopped, diverged,
  errored, out of memory, stalled, unfinished), the error in one line
  (`errors.describe_failure`), `epochs_run` against `planned_epochs` (what it would have run
  to the end: `compute_used`), best and last
  value of every metric (`best_<m>`, `last_<m>`), the epoch of the best objective, wall time,
  resources, where it ran (`node_id`, `nodes`, `cuda_visible_devices`) and how often it was
  retried after a failure (`retries`);
- `curves.parquet`: one row per report: trial id, step, epoch and every reported metric.

`load(EXPERIMENT_DIR)` returns both as pandas frames, rebuilding them first where Tune's state
is newer than the store (an interrupted or resumed experiment).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from ray.tune import Callback, ExperimentAnalysis

from raysweep import experiment
from raysweep.errors import describe_failure, failure_kind
from raysweep.search import SCHEDULERS, space
from raysweep.workloads import load_workload

log = logging.getLogger("raysweep")

TRIALS_FILE = "trials.parquet"
CURVES_FILE = "curves.parquet"
# What Tune adds to every result besides the trial's own metrics.
TUNE_COLUMNS = {"timestamp", "checkpoint_dir_name", "should_checkpoint", "done", "trial_id", "date",
                "time_this_iter_s", "time_total_s", "pid", "hostname", "node_ip", "time_since_restore",
                "iterations_since_restore", "training_iteration", "config", "experiment_tag"}
# What raysweep's executors add to every report besides metrics (where the trial trained).
PLACEMENT_COLUMNS = {"node_id", "cuda_visible_devices"}


# Tune warns on every load about each trial without result files: those ended before their first
# report (an error in epoch 1, a stall, a kill), which the store shows as such. No news.
TUNE_ANALYSIS_LOGGER = "ray.tune.analysis.experiment_analysis"


@contextlib.contextmanager
def _quiet(name: str):
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


@dataclass
class Results:
    trials: pd.DataFrame
    curves: pd.DataFrame


def stop_reason(status: str, epochs_run: int, planned: int, error: str, scheduler: str,
                patience_ran_out: bool, stalled: bool = False) -> str:
    """Why a trial ended, in words: from Tune's status, the epochs it ran, its error and the
    label of the scheduler that could have stopped it (empty where none could)."""
    if status == "ERROR":
        return "stalled" if stalled else failure_kind(error)
    if status != "TERMINATED":
        return "unfinished"
    if epochs_run < planned:
        if patience_ran_out:   # the loop restores the best weights only at its last epoch
            return "early stopped"
        return f"stopped by {scheduler}" if scheduler else "stopped early"
    return "finished"


def _error_text(trial_path: str) -> str:
    path = Path(trial_path) / "error.txt"
    return path.read_text(errors="replace") if path.is_file() else ""


def _cell(value):
    """Parquet wants one type per column: lists and mappings are stored as their JSON text."""
    return json.dumps(value) if isinstance(value, (list, tuple, dict)) else value


def value(cell):
    """A stored parameter back as the trial saw it (JSON text of a list or mapping decoded)."""
    if isinstance(cell, str) and cell[:1] in "[{":
        try:
            return json.loads(cell)
        except json.JSONDecodeError:
            return cell
    return cell


def placement(history: pd.DataFrame) -> dict:
    """Where a trial trained, from what its reports carry (runner.executors.placement): the
    node of its last report, every node it ran on in order (a retried trial may move), and
    the GPUs Ray gave it."""
    nodes = [n for n in history.get("node_id", pd.Series(dtype=object)).dropna().astype(str) if n]
    devices = history.get("cuda_visible_devices", pd.Series(dtype=object)).dropna()
    return {"node_id": nodes[-1] if nodes else None, "nodes": _cell(list(dict.fromkeys(nodes))),
            "cuda_visible_devices": str(devices.iloc[-1]) if len(devices) else None}


def _best(series: pd.Series, mode: str):
    values = pd.to_numeric(series, errors="coerce")
    if not values.notna().any():
        return math.nan, None
    i = values.idxmin() if mode == "min" else values.idxmax()
    return float(values.loc[i]), i


def build(experiment_dir: str | Path) -> Results:
    """Gather Tune's files into the two tables (no Ray start).

    Statuses come from the experiment state Tune saved, not from the live trials: when a sweep
    is interrupted, Tune ends the live trials, but the saved state keeps them unfinished, which
    is what `raysweep resume` goes by and what the store must say.
    """
    spec = experiment.load_spec(experiment_dir)
    with _quiet(TUNE_ANALYSIS_LOGGER):
        analysis = ExperimentAnalysis(str(Path(experiment_dir).resolve()))
    modes = load_workload(spec.workload).METRICS
    frames = analysis.trial_dataframes
    stalled = experiment.stalled_trials(experiment_dir)
    kind = SCHEDULERS[spec.scheduler.type]
    trial_rows, curve_parts = [], []
    for t in analysis.trials:
        history = frames.get(t.trial_id, pd.DataFrame())
        where = placement(history)   # before the re-run epochs replace the first attempt's
        if "epoch" in history:
            # A resumed trial re-runs the epochs after its last checkpoint: the re-run counts.
            history = history.drop_duplicates(subset="epoch", keep="last")
        history = history.reset_index(drop=True)
        metrics = [c for c in history.columns if c not in TUNE_COLUMNS | PLACEMENT_COLUMNS and c != "epoch"
                   and not c.startswith("config/") and pd.api.types.is_numeric_dtype(history[c])]
        epochs_run = int(history["epoch"].max()) if "epoch" in history and len(history) else 0
        config = space.decode(t.config, spec.params)
        planned = int(config.get("epochs", spec.epochs))
        if kind.stops_early:
            planned = min(planned, spec.scheduler_max_t)
        error = _error_text(t.path)
        patience = "restored_best_epoch" in history and history["restored_best_epoch"].notna().any()
        # stalled in its last attempt (a retried trial may have failed otherwise since)
        was_stalled = t.status == "ERROR" and stalled.get(t.trial_id, {}).get("attempt") == t.num_failures
        row = {"trial": t.trial_id, **{k: _cell(v) for k, v in config.items()},
               "status": stop_reason(t.status, epochs_run, planned, error, kind.label, patience, stalled=was_stalled),
               "error": (stalled[t.trial_id]["reason"] if was_stalled else describe_failure(error))
               if t.status == "ERROR" else "",
               "epochs_run": epochs_run, "planned_epochs": planned}
        best_index = _best(history[spec.metric], spec.mode)[1] if spec.metric in history else None
        row["best_epoch"] = int(history.loc[best_index, "epoch"]) if best_index is not None else None
        for m in metrics:   # best and last of each metric; last only of what is no score (lr)
            if m == "restored_best_epoch":
                restored = history[m].dropna()
                row[m] = int(restored.iloc[-1]) if len(restored) else None
                continue
            if m in modes:
                row[f"best_{m}"] = _best(history[m], modes[m])[0]
            row[f"last_{m}"] = float(history[m].iloc[-1]) if len(history) else math.nan
        row["wall_time_s"] = float(history["time_total_s"].iloc[-1]) if "time_total_s" in history and len(history) else 0.0
        resources = t.placement_group_factory.required_resources
        row["cpus"], row["gpus"] = float(resources.get("CPU", 0)), float(resources.get("GPU", 0))
        # Tune counts a trial's final failure too; retries are the failures it came back from.
        row.update(where, retries=int(t.num_failures) - int(t.status == "ERROR"))
        row["path"] = str(t.path)
        trial_rows.append(row)
        if len(history):
            step = history["training_iteration"] if "training_iteration" in history else pd.Series(range(1, len(history) + 1))
            curve = pd.DataFrame({"trial": t.trial_id, "step": step.astype(int)})
            curve = pd.concat([curve, history[["epoch"] + metrics if "epoch" in history else metrics]], axis=1)
            curve_parts.append(curve)
    trials = pd.DataFrame(trial_rows)
    curves = pd.concat(curve_parts, ignore_index=True) if curve_parts else pd.DataFrame(columns=["trial", "step"])
    for column in ("best_epoch", "restored_best_epoch"):
        if column in trials:
            trials[column] = trials[column].astype("Int64")
    return Results(trials, curves)


@dataclass(frozen=True)
class ComputeUsed:
    """Epochs the trials trained against what the same trials would have cost run to the end."""

    trained: int
    full: int

    @property
    def share(self) -> float:
        return self.trained / self.full if self.full else math.nan

    def __str__(self) -> str:
        return f"trained {self.trained} of {self.full} epochs ({self.share:.0%} of the epochs of a full run)"


def compute_used(trials: pd.DataFrame) -> ComputeUsed:
    """What early stopping bought: the epochs trained against every trial run to its planned end
    (a store written before `planned_epochs` existed counts what each trial ran)."""
    if trials.empty:
        return ComputeUsed(0, 0)
    planned = trials["planned_epochs"] if "planned_epochs" in trials else trials["epochs_run"]
    return ComputeUsed(int(trials["epochs_run"].sum()), int(planned.sum()))


def write(experiment_dir: str | Path, results: Results) -> list[Path]:
    experiment_dir = Path(experiment_dir)
    paths = [experiment_dir / TRIALS_FILE, experiment_dir / CURVES_FILE]
    for frame, path in zip((results.trials, results.curves), paths):
        tmp = path.with_suffix(".parquet.tmp")
        frame.to_parquet(tmp, index=False)
        tmp.replace(path)   # a reader never sees half a file
    return paths


def _state_mtime(experiment_dir: Path) -> float:
    states = list(experiment_dir.glob(experiment.TUNE_STATE_GLOB))
    return max((p.stat().st_mtime for p in states), default=0.0)


def load(experiment_dir: str | Path) -> Results:
    """Both tables of an experiment, rebuilt from Tune's files where those are newer.

    Works for finished, interrupted and resumed experiments alike; the store is written back
    so the next load is one read of two files.
    """
    experiment_dir = Path(experiment_dir)
    trials_path, curves_path = experiment_dir / TRIALS_FILE, experiment_dir / CURVES_FILE
    if trials_path.is_file() and curves_path.is_file() and \
            min(trials_path.stat().st_mtime, curves_path.stat().st_mtime) >= _state_mtime(experiment_dir):
        return Results(pd.read_parquet(trials_path), pd.read_parquet(curves_path))
    results = build(experiment_dir)
    if not results.trials.empty:
        write(experiment_dir, results)
    return results


class StoreWriter(Callback):
    """Keeps the store current while a sweep runs: after trials end and once more at the end,
    from what Tune has saved by then (`load` rebuilds when Tune saved later). A failure to
    write is logged, never raised: the store must not take a sweep down.

    A rebuild reads every trial, so it takes longer as the sweep grows (7 s at 1,500 trials),
    and it runs in Tune's driver loop, which schedules nothing meanwhile. Rebuilt every 10 s, it
    took three quarters of the driver's time by then (bench/scale.py). The next rebuild now waits
    `min_interval_s`, or 20 times as long as the last one took, whichever is longer: the store
    costs the sweep at most about 5% of its time, whatever its size.
    """

    def __init__(self, experiment_dir: str, min_interval_s: float = 10.0, max_share: float = 0.05,
                 clock=time.monotonic):
        self.experiment_dir, self.min_interval_s, self.max_share = str(experiment_dir), min_interval_s, max_share
        self.clock = clock
        self.next_write = 0.0

    def _write(self, force: bool) -> None:
        started = self.clock()
        if not force and started < self.next_write:
            return
        try:
            write(self.experiment_dir, build(self.experiment_dir))
        except Exception as exc:  # noqa: BLE001 - reported, and rebuilt by the next load()
            log.warning("results store not updated (%s: %s); `raysweep rank` rebuilds it", type(exc).__name__, exc)
        took = self.clock() - started
        self.next_write = started + max(self.min_interval_s, took / self.max_share)

    def on_trial_complete(self, iteration, trials, trial, **info):
        self._write(force=False)

    def on_trial_error(self, iteration, trials, trial, **info):
        self._write(force=False)

    def on_experiment_end(self, trials, **info):
        self._write(force=True)
