"""The plan a sweep made at its start (analysis/forecast.py) beside what happened, so users learn
how far to trust `raysweep plan`: trials, epochs, wall time and resource-hours, each with its
error. `rank` prints it and the report shows it.

What happened: the trials in the store, the epochs they ran, their durations times what each
held, and the wall time of each run and resume from the sweep's timeline (analysis/timing.py).
A run killed before it ended recorded no timeline, so its time is missing from the actual.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import pandas as pd

from raysweep import experiment
from raysweep.analysis import forecast, store, timing
from raysweep.search import SCHEDULERS

log = logging.getLogger("raysweep")
ROWS = (("trials", "trials"), ("epochs", "epochs"), ("wall time (s)", "wall_s"),
        ("CPU-hours", "cpu_hours"), ("GPU-hours", "gpu_hours"))


def actual(experiment_dir: str | Path, trials: pd.DataFrame | None = None) -> dict:
    """What the sweep took. The wall time is its runs' and resumes' (unknown, None, where one was
    killed: its end was never written). A trial's hours are its seconds from Tune's start of it to
    its end (the trials journal: what its resources were held for, as the plan counts them), or
    its own training time under a scheduler that pauses trials (their waits hold nothing) and for
    an experiment in a bucket (one read per trial less)."""
    experiment_dir = Path(experiment_dir)
    trials = store.load(experiment_dir).trials if trials is None else trials
    runs = timing.timeline(experiment_dir)
    wall = sum(r["ended"] - r["started"] for r in runs) if runs and all("ended" in r for r in runs) else None
    if trials.empty:
        return {"trials": 0, "epochs": 0, "wall_s": wall, "cpu_hours": 0.0, "gpu_hours": 0.0}
    seconds = trials.set_index("trial")["wall_time_s"].fillna(0).astype(float)
    pauses = SCHEDULERS[experiment.load_spec(experiment_dir).scheduler.type].pauses
    times = None if pauses or experiment.is_copy(experiment_dir) else timing.trial_times(experiment_dir, trials)
    if times is not None:
        seconds = (times["ended_at"] - times["started_at"]).reindex(seconds.index)
    by_trial = trials.set_index("trial")
    return {"trials": len(trials), "epochs": int(trials["epochs_run"].sum()), "wall_s": wall,
            "cpu_hours": float((seconds * by_trial["cpus"]).sum() / 3600),
            "gpu_hours": float((seconds * by_trial["gpus"]).sum() / 3600)}


def comparison(experiment_dir: str | Path, trials: pd.DataFrame | None = None) -> pd.DataFrame | None:
    """predicted, actual and error (actual against predicted, in %) per measure; None without a
    plan. `trials`: the results store's trials where the caller has read them already."""
    predicted = forecast.read(experiment_dir)
    if predicted is None:
        return None
    happened = actual(experiment_dir, trials)
    rows = []
    for label, key in ROWS:
        p, a = predicted.get(key), happened.get(key)
        if key == "gpu_hours" and not p and not a:
            continue
        rows.append({"": label, "predicted": p, "actual": a, "error": _error(p, a)})
    return pd.DataFrame(rows)


def comparison_or_warning(experiment_dir: str | Path, trials: pd.DataFrame | None = None) -> pd.DataFrame | None:
    """`comparison`, or None and a warning where the plan or the timeline cannot be read: a side
    table never takes `rank` or the report down."""
    try:
        return comparison(experiment_dir, trials)
    except Exception as exc:   # noqa: BLE001 (a damaged plan.json, a journal out of reach)
        log.warning("no plan against actual for %s (%s: %s)", experiment_dir, type(exc).__name__, exc)
        return None


def _error(predicted, happened) -> str:
    if predicted is None or happened is None or (isinstance(predicted, float) and math.isnan(predicted)):
        return ""
    if predicted == 0:
        return "" if happened == 0 else "n/a"
    return f"{(happened - predicted) / predicted:+.0%}"


def format_comparison(table: pd.DataFrame, source: str) -> str:
    shown = table.copy()
    for column in ("predicted", "actual"):
        shown[column] = [display(label, v) for label, v in zip(shown[""], shown[column])]
    head = "plan against actual (the plan made as the sweep started" + (f"; timed by {source}" if source else
                                                                         "; no timing, so no wall time") + "):"
    return head + "\n" + shown.to_string(index=False)


def display(label: str, value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if label in ("trials", "epochs"):
        return f"{value:.0f}"
    return f"{value:.3g}"
