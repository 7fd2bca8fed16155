"""Several objectives and constraints in the results store: each trial's point, whether it is
feasible, and its Pareto front.

A trial's point is the value of each objective read at ONE epoch: the epoch where its first
objective (`spec.metric`) was best, the first such report on a tie, from the curves table.
That epoch's weights are what `export` deploys (a trial's `best.pt` holds them, and ASHA, early
stopping and the kept checkpoints all go by the first objective), so a point is what one model
achieved, never the best val_loss of epoch 3 beside the best val_ece of epoch 9. Constraints are
judged at the same epoch, for the same reason.

`annotate` adds to the trials table:

- `at_best_<m>`: metric m at that epoch, for every objective and every constraint's metric;
- `feasible`: every constraint holds at that epoch (True where the spec has none); a trial
  that failed (errored, diverged, out of memory, stalled), or lacks an objective's value at that
  epoch, is never feasible;
- with several objectives, `pareto_rank` (1: the Pareto front of the feasible trials; the
  infeasible ones are ranked among themselves after every feasible one) and `crowding`
  (NSGA-II's crowding distance within the trial's front, inf at its ends): Optuna's semantics,
  as `search.objectives.pareto_order` computes them.

Sorting into fronts compares every pair of trials at once in numpy (`search.objectives.fronts`):
a fraction of a second for 2,000 trials.
"""

from __future__ import annotations

from typing import Sequence

import pandas as pd

from raysweep.analysis import diagnose
from raysweep.search import objectives as goals
from raysweep.search.objectives import Constraint, Objective

AT_BEST = "at_best_"
FEASIBLE, PARETO_RANK, CROWDING = "feasible", "pareto_rank", "crowding"


def at_best_column(metric: str) -> str:
    """The store's column of `metric` at the epoch where the first objective was best."""
    return f"{AT_BEST}{metric}"


def point_metrics(objectives: Sequence[Objective], constraints: Sequence[Constraint]) -> list[str]:
    """The metrics a trial's point and its feasibility are read from, each once, objectives first."""
    return list(dict.fromkeys([o.metric for o in objectives] + [c.metric for c in constraints]))


def at_best(curves: pd.DataFrame, first: Objective, metrics: Sequence[str]) -> pd.DataFrame:
    """Per trial (the index): the epoch where `first` was best (the first report, on a tie) and
    each of `metrics` in that report (NaN where the report lacks it). A trial that never
    reported `first` as a number is absent."""
    columns = ["epoch", *dict.fromkeys(metrics)]
    if curves.empty or first.metric not in curves:
        return pd.DataFrame(columns=columns, index=pd.Index([], name="trial"), dtype=float)
    values = pd.to_numeric(curves[first.metric], errors="coerce")
    reported = curves[values.notna()].assign(_value=values[values.notna()]).reset_index(drop=True)
    grouped = reported.groupby("trial", sort=False)["_value"]
    rows = reported.loc[(grouped.idxmin() if first.mode == "min" else grouped.idxmax()).to_numpy()]
    out = pd.DataFrame(index=pd.Index(rows["trial"], name="trial"))
    for name in columns:
        out[name] = pd.to_numeric(rows[name], errors="coerce").to_numpy(float) if name in rows else float("nan")
    return out


def expected_columns(objectives: Sequence[Objective], constraints: Sequence[Constraint]) -> list[str]:
    """The columns `annotate` adds for a spec's objectives and constraints."""
    added = [at_best_column(m) for m in point_metrics(objectives, constraints)] + [FEASIBLE]
    return added + ([PARETO_RANK, CROWDING] if len(objectives) > 1 else [])


def annotate(trials: pd.DataFrame, curves: pd.DataFrame, objectives: Sequence[Objective],
             constraints: Sequence[Constraint] = ()) -> pd.DataFrame:
    """The trials table with each trial's point, feasibility and (several objectives) its front
    and crowding distance (the module's docstring says what each column holds)."""
    if trials.empty or "trial" not in trials or not objectives:
        return trials
    metrics = point_metrics(objectives, constraints)
    values = at_best(curves, objectives[0], metrics)
    out = trials.copy()
    for m in metrics:
        out[at_best_column(m)] = out["trial"].map(values[m]).astype(float)
    failed = out["status"].isin(diagnose.FAILED_STATUSES) if "status" in out else pd.Series(False, index=out.index)
    points = out[[at_best_column(m) for m in metrics]].to_dict("records")
    # A trial missing an objective (NaN, never measured) has no point to compare: Optuna tells it
    # as failed, and here it is not feasible, so it never sits on the front or wins a pick.
    measured = out[[at_best_column(o.metric) for o in objectives]].notna().all(axis=1)
    out[FEASIBLE] = [not bad and whole and goals.feasible({m: p[at_best_column(m)] for m in metrics}, constraints)
                     for bad, whole, p in zip(failed, measured, points)]
    if len(objectives) > 1:
        coordinates = out[[at_best_column(o.metric) for o in objectives]].to_numpy(float).tolist()
        _, front, crowd = goals.pareto_order(coordinates, objectives, out[FEASIBLE].tolist())
        out[PARETO_RANK], out[CROWDING] = front, crowd
    return out


def annotated(trials: pd.DataFrame, curves: pd.DataFrame, spec) -> pd.DataFrame:
    """The trials table with the columns of `annotate` for the spec's objectives and
    constraints, computed only where the store lacks them (one written before raysweep
    recorded them, or by a writer that did not know the spec)."""
    if trials.empty or all(c in trials for c in expected_columns(spec.objectives, spec.constraints)):
        return trials
    return annotate(trials, curves, spec.objectives, spec.constraints)


def front(trials: pd.DataFrame) -> pd.DataFrame:
    """The feasible Pareto front (`pareto_rank` 1) of an annotated trials table, in its
    crowding order (the most isolated first)."""
    if PARETO_RANK not in trials:
        return trials.iloc[0:0]
    on_front = trials[(trials[PARETO_RANK] == 1) & trials[FEASIBLE].astype(bool)]
    return on_front.sort_values(CROWDING, ascending=False, kind="stable")
