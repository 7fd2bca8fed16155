"""The plan a sweep made at its start (analysis/forecast.py) beside what happened, so users learn
how far to trust `raysweep plan`: trials, epochs, wall time and resource-hours, each with its
error. `rank` prints it and the report shows it.

What happened: the trials in the store, the epochs they ran, their durations times what each
held, and the wall time of each run and resume from the sweep's timeline (analysis/timing.py).
A run killed before it ended recorded no timeline, so its time is missing from the actual.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from raysweep.analysis import forecast, store, timing

ROWS = (("trials", "trials"), ("epochs", "epochs"), ("wall time (s)", "wall_s"),
        ("CPU-hours", "cpu_hours"), ("GPU-hours", "gpu_hours"))


def actual(experiment_dir: str | Path) -> dict:
    """What the sweep took. A trial's hours are its seconds from Tune's start of it to its end
    (the trials journal: what its resources were held for, as the plan counts them), else its
    own training time."""
    trials = store.load(Path(experiment_dir)).trials
    runs = [r for r in timing.timeline(experiment_dir) if "ended" in r]
    if trials.empty:
        return {"trials": 0, "epochs": 0, "wall_s": None, "cpu_hours": 0.0, "gpu_hours": 0.0}
    seconds = trials.set_index("trial")["wall_time_s"].fillna(0).astype(float)
    times = timing.trial_times(Path(experiment_dir), trials)
    if times is not None:
        seconds = (times["ended_at"] - times["started_at"]).reindex(seconds.index)
    by_trial = trials.set_index("trial")
    return {"trials": len(trials), "epochs": int(trials["epochs_run"].sum()),
            "wall_s": sum(r["ended"] - r["started"] for r in runs) if runs else None,
            "cpu_hours": float((seconds * by_trial["cpus"]).sum() / 3600),
            "gpu_hours": float((seconds * by_trial["gpus"]).sum() / 3600)}


def comparison(experiment_dir: str | Path) -> pd.DataFrame | None:
    """predicted, actual and error (actual against predicted, in %) per measure; None without a plan."""
    predicted = forecast.read(experiment_dir)
    if predicted is None:
        return None
    happened = actual(experiment_dir)
    rows = []
    for label, key in ROWS:
        p, a = predicted.get(key), happened.get(key)
        if key == "gpu_hours" and not p and not a:
            continue
        rows.append({"": label, "predicted": p, "actual": a, "error": _error(p, a)})
    return pd.DataFrame(rows)


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
