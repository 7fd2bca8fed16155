"""Rank the trials of an experiment: best metric, when it came, and why a trial ended.

Reads the experiment's results store (`store.load`: one table of trials, one of curves) and
the spec snapshot raysweep writes beside it, so it knows which parameters were tuned.

With several objectives the order is Optuna's (analysis.pareto): feasible trials first, then
by Pareto front (`pareto_rank`, 1 the front), then by crowding distance within a front (the
more isolated first); each objective is shown at the epoch where the first was best
(`best_<first>`, then `at_best_<m>`), beside `pareto_rank` and `feasible`. With one objective
and constraints, the feasible trials come first, each group best first, with a `feasible`
column; the metrics the constraints name are shown at that same epoch (`at_best_<m>`). One
objective and no constraints: the table it always was.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from raysweep import experiment
from raysweep.analysis import diagnose, pareto, store
from raysweep.checks import did_you_mean, is_missing
from raysweep.errors import UserError
from raysweep.search.objectives import Objective
from raysweep.spec import SpecError
from raysweep.spec.validate import reported_metrics

LEADERBOARD_FILES = ("leaderboard.csv", "leaderboard.parquet")


def leaderboard(experiment_dir: str | Path, *, metric: str | None = None,
                mode: str | None = None) -> pd.DataFrame:
    """One row per trial, best first: rank, trial, tuned params, best metric, epoch, status
    (and, with several objectives or constraints, what the module's docstring says).

    Whole columns at a time, not a row at a time: 10,000 trials rank in well under a second
    (with several objectives, sorting into fronts is what takes time: analysis.pareto).
    """
    spec = experiment.load_spec(experiment_dir)
    metric, mode = metric or spec.metric, mode or spec.mode
    results = store.load(experiment_dir)
    trials = pareto.annotated(results.trials, results.curves, spec)
    require_metric(metric, known_metrics(spec, trials))
    if trials.empty:
        return pd.DataFrame()
    best = _best_epochs(results.curves, metric, mode)
    table = pd.DataFrame({"trial": trials["trial"]})
    for p in spec.tuned:
        table[p] = trials[p].map(lambda v: None if is_missing(v) else store.value(v)) if p in trials else None
    table[f"best_{metric}"] = trials["trial"].map(best[metric]).astype(float) if len(best) else math.nan
    by_front = spec.multi_objective and metric == spec.metric
    shown = [o.metric for o in spec.objectives[1:]] if by_front else []
    for m in dict.fromkeys(shown + [c.metric for c in spec.constraints]):
        if m != metric:
            table[pareto.at_best_column(m)] = trials[pareto.at_best_column(m)].to_numpy(float)
    epochs = trials["trial"].map(best["epoch"]) if len(best) else pd.Series(pd.NA, index=trials.index)
    table["best_epoch"] = epochs.astype("Int64")
    table["epochs"] = trials["epochs_run"].astype(int)
    if by_front:
        table[pareto.PARETO_RANK] = trials[pareto.PARETO_RANK].astype(int)
    if by_front or spec.constraints:
        table[pareto.FEASIBLE] = trials[pareto.FEASIBLE].astype(bool)
    table["status"] = trials["status"]
    if by_front:   # pareto_order's order: front (the infeasible after the feasible), then crowding
        table = table.assign(_crowding=trials[pareto.CROWDING].to_numpy(float))
        table = table.sort_values([pareto.PARETO_RANK, "_crowding"], ascending=[True, False], kind="stable")
        table = table.drop(columns="_crowding")
    elif spec.constraints:
        table = table.sort_values([pareto.FEASIBLE, f"best_{metric}"], ascending=[False, mode == "min"],
                                  na_position="last", kind="stable")
    else:
        table = table.sort_values(f"best_{metric}", ascending=(mode == "min"), na_position="last", kind="stable")
    table = table.reset_index(drop=True)
    table.insert(0, "rank", range(1, len(table) + 1))
    return table


def known_metrics(spec, trials: pd.DataFrame) -> list[str]:
    """What an experiment's trials can be ranked on: what its workload reports and every metric
    a trial reported (the store's `best_<metric>` columns)."""
    reported = [c.removeprefix("best_") for c in trials.columns if c.startswith("best_") and c != "best_epoch"]
    try:   # latency_ms and parameters too where the trials measured them (fixed.measure_latency)
        declared = list(reported_metrics(spec.workload, spec.fixed))
    except UserError:   # a user's workload this machine lacks: ranking needs only the store
        declared = []
    return list(dict.fromkeys([*declared, *reported]))


def require_metric(metric: str, known: list[str]) -> None:
    """A clear error for a metric no trial reports (a typo would rank every trial NaN)."""
    if metric not in known:
        raise SpecError([f"--metric {metric}: not a metric of this experiment.{did_you_mean(metric, known)} "
                         f"Known: {', '.join(known)}."])


def _best_epochs(curves: pd.DataFrame, metric: str, mode: str) -> pd.DataFrame:
    """Per trial (the index), its best `metric` and the epoch it came at (the first, on a tie)."""
    return pareto.at_best(curves, Objective(metric, mode), [metric])


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
    """The first `top` rows as text, and how many more there are."""
    shown = table.head(top) if top else table
    text = shown.to_string(index=False, float_format=lambda x: f"{x:.4g}")
    left = len(table) - len(shown)
    return text + (f"\n... and {left:,} more (--top 0 prints all)" if left > 0 else "")
