"""Rank the trials of an experiment directory: best metric, when it came, and why a trial ended.

Reads Tune's experiment state through `ExperimentAnalysis` (no Ray start) and the spec snapshot
raysweep writes beside it, so it knows which parameters were tuned and how many epochs a trial
was meant to run. A trial that ended early without an error was stopped by the scheduler.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from raysweep import space, sweep

LEADERBOARD_FILES = ("leaderboard.csv", "leaderboard.parquet")


def _stop_reason(status: str, epochs_run: int, planned: int, error: str, asha: bool) -> str:
    if status == "ERROR":
        return "diverged" if "DivergedError" in error else "errored"
    if status != "TERMINATED":
        return "unfinished"
    if epochs_run < planned:
        return "stopped by ASHA" if asha else "stopped early"
    return "finished"


def _error_text(trial_path: str) -> str:
    path = Path(trial_path) / "error.txt"
    return path.read_text(errors="replace") if path.is_file() else ""


def leaderboard(experiment_dir: str | Path, *, metric: str | None = None,
                mode: str | None = None) -> pd.DataFrame:
    """One row per trial, best first: rank, trial, tuned params, best metric, epoch, status."""
    from ray.tune import ExperimentAnalysis

    spec = sweep.load_snapshot(experiment_dir)
    metric, mode = metric or spec.metric, mode or spec.mode
    analysis = ExperimentAnalysis(str(Path(experiment_dir).resolve()))
    tuned = spec.tuned
    frames = analysis.trial_dataframes
    rows = []
    for t in analysis.trials:
        history = frames.get(t.trial_id, pd.DataFrame())
        epochs_run = int(history["epoch"].max()) if "epoch" in history and len(history) else 0
        best, best_epoch = math.nan, None
        if metric in history and history[metric].notna().any():
            i = history[metric].idxmin() if mode == "min" else history[metric].idxmax()
            best, best_epoch = float(history.loc[i, metric]), int(history.loc[i, "epoch"])
        config = space.decode(t.config, spec.params)
        planned = int(config.get("epochs", spec.epochs))
        status = _stop_reason(t.status, epochs_run, planned, _error_text(t.path),
                              spec.scheduler.type == "asha")
        rows.append({"trial": t.trial_id, **{p: config.get(p) for p in tuned},
                     f"best_{metric}": best, "best_epoch": best_epoch, "epochs": epochs_run,
                     "status": status})
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    table = table.sort_values(f"best_{metric}", ascending=(mode == "min"), na_position="last",
                              kind="stable").reset_index(drop=True)
    table.insert(0, "rank", range(1, len(table) + 1))
    table["best_epoch"] = table["best_epoch"].astype("Int64")
    return table


def _key(value):
    """Group keys must hash: lists (e.g. layer widths) become their text."""
    return str(value) if isinstance(value, (list, dict, tuple)) else value


def best_per_value(table: pd.DataFrame, params: list[str]) -> pd.DataFrame:
    """The best trial for each combination of `params` (the study's scientific parameters).

    The playbook's comparison: each scientific value is judged by its best trial, the
    nuisance parameters having been tuned for it. `table` is a leaderboard, best first.
    """
    keys = table[params].map(_key)
    return table.loc[~keys.duplicated()].reset_index(drop=True)


def group_by(table: pd.DataFrame, param: str, metric: str, mode: str) -> pd.DataFrame:
    """Trials grouped by one parameter: the spread of their best metric over the rest (e.g. seeds).

    Ranked on the mean, so one lucky seed does not carry a learning rate.
    """
    column = f"best_{metric}"
    frame = table.assign(_group=table[param].map(_key))
    grouped = frame.groupby("_group", sort=False)
    out = pd.DataFrame({
        param: grouped[param].first(),
        "trials": grouped.size(),
        "ok": grouped[column].count(),
        f"mean_{metric}": grouped[column].mean(),
        f"std_{metric}": grouped[column].std(ddof=1),
        f"min_{metric}": grouped[column].min(),
        f"max_{metric}": grouped[column].max(),
    })
    out = out.sort_values(f"mean_{metric}", ascending=(mode == "min"), na_position="last", kind="stable")
    out = out.reset_index(drop=True)
    out.insert(0, "rank", range(1, len(out) + 1))
    return out


def write(table: pd.DataFrame, experiment_dir: str | Path) -> list[Path]:
    """Save the leaderboard beside the results as CSV and Parquet."""
    experiment_dir = Path(experiment_dir)
    csv_path, parquet_path = (experiment_dir / name for name in LEADERBOARD_FILES)
    table.to_csv(csv_path, index=False)
    # Parquet wants one type per column: tuned values may mix (e.g. lists as JSON strings).
    table.astype({c: str for c in table.columns if table[c].dtype == object}).to_parquet(parquet_path)
    return [csv_path, parquet_path]


def format_table(table: pd.DataFrame, top: int | None = 10) -> str:
    shown = table.head(top) if top else table
    return shown.to_string(index=False, float_format=lambda x: f"{x:.4g}")
