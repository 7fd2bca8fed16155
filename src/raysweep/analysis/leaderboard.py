"""Rank the trials of an experiment: best metric, when it came, and why a trial ended.

Reads the experiment's results store (`store.load`: one table of trials, one of curves) and
the spec snapshot raysweep writes beside it, so it knows which parameters were tuned.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from raysweep import experiment
from raysweep.analysis import diagnose, store
from raysweep.checks import is_missing

LEADERBOARD_FILES = ("leaderboard.csv", "leaderboard.parquet")


def leaderboard(experiment_dir: str | Path, *, metric: str | None = None,
                mode: str | None = None) -> pd.DataFrame:
    """One row per trial, best first: rank, trial, tuned params, best metric, epoch, status."""
    spec = experiment.load_spec(experiment_dir)
    metric, mode = metric or spec.metric, mode or spec.mode
    results = store.load(experiment_dir)
    curves = results.curves.groupby("trial") if not results.curves.empty else None
    rows = []
    for _, t in results.trials.iterrows():
        best, best_epoch = math.nan, None
        if curves is not None and t["trial"] in curves.groups:
            curve = curves.get_group(t["trial"])
            if metric in curve and curve[metric].notna().any():
                i = curve[metric].idxmin() if mode == "min" else curve[metric].idxmax()
                best, best_epoch = float(curve.loc[i, metric]), int(curve.loc[i, "epoch"])
        params = {p: store.value(t[p]) if p in t and not is_missing(t[p]) else None for p in spec.tuned}
        rows.append({"trial": t["trial"], **params, f"best_{metric}": best, "best_epoch": best_epoch,
                     "epochs": int(t["epochs_run"]), "status": t["status"]})
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


def group_by(table: pd.DataFrame, params: str | list[str], metric: str, mode: str) -> pd.DataFrame:
    """Trials grouped by one or more parameters: the spread of their best metric over the rest.

    Ranked on the mean, so one lucky seed does not carry a learning rate; `ci95_*` bound the
    mean's 95 % interval (Student's t over the group's finished trials).
    """
    params = [params] if isinstance(params, str) else list(params)
    column = f"best_{metric}"
    frame = table.assign(_group=table[params].map(_key).apply(tuple, axis=1))
    grouped = frame.groupby("_group", sort=False)
    out = pd.DataFrame({p: grouped[p].first() for p in params})
    out["trials"] = grouped.size()
    out["ok"] = grouped[column].count()
    out[f"mean_{metric}"] = grouped[column].mean()
    out[f"std_{metric}"] = grouped[column].std(ddof=1)
    half = [diagnose.ci95_halfwidth(sd, n) for sd, n in zip(out[f"std_{metric}"], out["ok"])]
    out["ci95_low"] = out[f"mean_{metric}"] - half
    out["ci95_high"] = out[f"mean_{metric}"] + half
    out[f"min_{metric}"] = grouped[column].min()
    out[f"max_{metric}"] = grouped[column].max()
    out = out.sort_values(f"mean_{metric}", ascending=(mode == "min"), na_position="last", kind="stable")
    out = out.reset_index(drop=True)
    out.insert(0, "rank", range(1, len(out) + 1))
    return out


def repeats_over(table: pd.DataFrame, tuned: list[str], repeat: str = "seed") -> list[str] | None:
    """The parameters that identify a configuration, where trials repeat configurations over
    `repeat` (e.g. seeds); None where every configuration ran once."""
    if repeat not in tuned or repeat not in table:
        return None
    keys = [p for p in tuned if p != repeat and p in table]
    if not keys:
        return None
    return keys if table[keys].map(_key).duplicated().any() else None


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
