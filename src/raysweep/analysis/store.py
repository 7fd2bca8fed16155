"""One compact results store per experiment: a table of trials and a table of learning curves.

Tune leaves a directory per trial (params, progress.csv, result.json, checkpoints, errors) plus
an experiment state file; loading that back means walking thousands of small files. raysweep
gathers them into two Parquet files in the experiment directory, a trial at a time as trials
end (analysis.store_writer), so that the store costs the same per trial at 10,000 trials as at
ten:

- `trials.parquet`: one row per trial: trial id, every parameter (fixed and tuned) as its own
  column (lists as JSON text; `value()` decodes), status (finished, stopped by ASHA (or
  HyperBand, median rule, BOHB: the scheduler that stopped it), early stopped, diverged,
  errored, out of memory, stalled, unfinished), the error in one line
  (`errors.describe_failure`), `epochs_run` against `planned_epochs` (what it would have run
  to the end: `compute_used`), best and last
  value of every metric (`best_<m>`, `last_<m>`), the epoch of the best objective, wall time,
  resources, where it ran (`node_id`, `nodes`, `cuda_visible_devices`) and how often it was
  retried after a failure (`retries`); and, read at the epoch where the first objective was
  best (analysis.pareto), `at_best_<m>` of every objective and constraint's metric, `feasible`
  (every constraint holds, and the trial did not fail) and, with several objectives,
  `pareto_rank` (1: the Pareto front) and `crowding`;
- `curves.parquet`: one row per report: trial id, step, epoch and every reported metric.

`load(EXPERIMENT_DIR)` returns both as pandas frames, rebuilding them first where Tune's state
is newer than the store (a driver killed mid-sweep); a rebuild reads the reports only of trials
the store does not hold as ended (analysis.trial_rows makes each row).
"""

from __future__ import annotations

import json
import logging
import math
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow.fs as pafs

from raysweep import experiment
from raysweep.analysis import pareto, trial_rows
from raysweep.experiment import journal
from raysweep.spec import Spec

log = logging.getLogger("raysweep")

TRIALS_FILE = "trials.parquet"
CURVES_FILE = "curves.parquet"
ENDED = ("TERMINATED", "ERROR")   # Tune's statuses of a trial that will not run again

@dataclass
class Results:
    trials: pd.DataFrame
    curves: pd.DataFrame


def value(cell):
    """A stored parameter back as the trial saw it (JSON text of a list or mapping decoded)."""
    if isinstance(cell, str) and cell[:1] in "[{":
        try:
            return json.loads(cell)
        except json.JSONDecodeError:
            return cell
    return cell


def assemble(rows: list[dict], curves: list[trial_rows.Curve], spec: Spec | None = None) -> Results:
    """The two tables from rows and curves (nullable integers where a trial may have none; a
    metric only some trials report is missing in the others' rows). With the `spec`, each
    trial's point, feasibility and front are computed over all the trials (analysis.pareto);
    rows kept from an earlier store have theirs computed again, as the trials around them change."""
    trials = pd.DataFrame(rows)
    for column in ("best_epoch", "restored_best_epoch"):
        if column in trials:
            trials[column] = trials[column].astype("Int64")
    if not curves:
        frame = pd.DataFrame(columns=["trial", "step"])
    else:
        columns = {}
        for name in dict.fromkeys(name for curve in curves for name in curve):
            columns[name] = [value for curve in curves
                             for value in curve.get(name) or [None] * len(curve["trial"])]
        frame = pd.DataFrame(columns)
    if spec is not None:
        trials = pareto.annotate(trials, frame, spec.objectives, spec.constraints)
    return Results(trials, frame)


def ended_rows(results: Results | None) -> tuple[dict[str, dict], dict[str, trial_rows.Curve]]:
    """The rows and curves of the trials a store holds as ended (a trial ends once: they stay)."""
    if results is None or results.trials.empty:
        return {}, {}
    ended = results.trials[results.trials["status"] != "unfinished"]
    rows = {r["trial"]: r for r in ended.to_dict("records")}
    held = results.curves[results.curves["trial"].isin(rows)] if "trial" in results.curves else results.curves.iloc[0:0]
    curves = {trial: curve.to_dict("list") for trial, curve in held.groupby("trial", sort=False)} if len(held) else {}
    return rows, curves


def read(experiment_dir: str | Path) -> Results | None:
    """The store as written, or None where there is none yet."""
    experiment_dir = Path(experiment_dir)
    paths = experiment_dir / TRIALS_FILE, experiment_dir / CURVES_FILE
    if not all(p.is_file() for p in paths):
        return None
    return Results(*(pd.read_parquet(p) for p in paths))


def build(experiment_dir: str | Path) -> Results:
    """Gather Tune's files into the two tables (no Ray start).

    Statuses come from the experiment state Tune saved and the trials journal, not from the live
    trials: when a sweep is interrupted, Tune ends the live trials, but the saved state keeps
    them unfinished, which is what `raysweep resume` goes by and what the store must say; a
    trial the journal holds as ended (after Tune's last save) is ended, with the reports the
    journal kept. A trial the store already holds as ended keeps its row; only the others'
    reports are read.
    """
    sweep = trial_rows.sweep_of(experiment_dir)
    stalled = experiment.stalled_trials(experiment_dir)
    kept_rows, kept_curves = ended_rows(read(experiment_dir))
    journaled = journal.read(pafs.LocalFileSystem(), str(Path(experiment_dir).resolve()))
    rows, curves = [], []
    for t, status in _trials(experiment_dir, journaled):
        entry = journaled.get(t.trial_id)
        if status in ENDED and t.trial_id in kept_rows:
            row, curve = {**kept_rows[t.trial_id], "path": str(t.path)}, kept_curves.get(t.trial_id)
        elif entry is not None:
            reports = [experiment.flat(json.loads(line)) for line in entry["results"]]
            row, curve = trial_rows.row(sweep, t, status, reports, entry["error"], stalled)
        else:
            reports, error = experiment.trial_reports(t.path), trial_rows.error_text(t.path)
            row, curve = trial_rows.row(sweep, t, status, reports, error, stalled)
        rows.append(row)
        if curve is not None:
            curves.append(curve)
    return assemble(rows, curves, sweep.spec)


def _trials(experiment_dir: str | Path, journaled: dict[str, dict]) -> list[tuple[object, str]]:
    """(trial, status) for Tune's saved trials, then those only the journal holds; a status the
    journal has as ended wins (runner/recovery.py makes a resumed Tune agree with it alike)."""
    saved = experiment.saved_trials(experiment_dir)
    found = [(t, journaled[t.trial_id]["status"] if t.trial_id in journaled and t.status not in ENDED else t.status)
             for t in saved]
    known = {t.trial_id for t in saved}
    for trial_id, entry in journaled.items():
        if trial_id not in known:
            trial = experiment.trial_of_record(entry["tune_state"], entry["tune_run_metadata"])
            found.append((trial, entry["status"]))
    return found


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
        # `rank`, or the Python API's reader thread, may write while the sweep does
        tmp = path.with_suffix(f".parquet.{os.getpid()}.{threading.get_ident()}.tmp")
        frame.to_parquet(tmp, index=False)
        tmp.replace(path)   # a reader never sees half a file
    return paths


def remove(experiment_dir: str | Path) -> None:
    """Remove the store, so that the next `load` rebuilds it from Tune's files."""
    for name in (TRIALS_FILE, CURVES_FILE):
        Path(experiment_dir, name).unlink(missing_ok=True)


def _state_mtime(experiment_dir: Path) -> float:
    """When Tune's saved state or the trials journal (a trial ended since) last changed."""
    states = list(experiment_dir.glob(experiment.TUNE_STATE_GLOB))
    ended = experiment_dir / journal.DIRS[journal.ENDED]
    return max([p.stat().st_mtime for p in states] + ([ended.stat().st_mtime] if ended.is_dir() else []), default=0.0)


def load(experiment_dir: str | Path) -> Results:
    """Both tables of an experiment, rebuilt from Tune's files where those are newer.

    Works for finished, interrupted and resumed experiments alike; the store is written back
    so the next load is one read of two files.
    """
    experiment_dir = Path(experiment_dir)
    trials_path, curves_path = experiment_dir / TRIALS_FILE, experiment_dir / CURVES_FILE
    if trials_path.is_file() and curves_path.is_file() and \
            min(trials_path.stat().st_mtime, curves_path.stat().st_mtime) >= _state_mtime(experiment_dir):
        return read(experiment_dir)
    results = build(experiment_dir)
    if not results.trials.empty:
        write(experiment_dir, results)
    return results
