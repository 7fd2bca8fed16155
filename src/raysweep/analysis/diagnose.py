"""What should make a reader distrust a ranking: optima at the edge of the space, many failures.

The Tuning Playbook's checks after a study: if the best trials crowd one end of a search range,
the optimum may lie outside it, so widen that end and search again; if many trials failed or
diverged, the ranking is over the survivors of a space that is partly broken.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd

from raysweep.errors import FAILURE_HINTS
from raysweep.search import space
from raysweep.training.loop import BAD_INPUT

EDGE_FRACTION = 0.1      # the outer tenth of a range (of its log for loguniform) counts as the edge
FAILED_STATUSES = ("errored", "diverged", "out of memory", "stalled")
FAILURE_SHARE = 0.2      # warn when at least this share of trials failed


def _position(p: space.Param, value: float) -> float | None:
    """Where `value` sits in p's range, 0 at low and 1 at high (log scale for loguniform)."""
    if p.is_choice:
        numbers = [v for v in p.values if isinstance(v, (int, float)) and not isinstance(v, bool)]
        if len(numbers) < 3 or len(numbers) != len(p.values):
            return None   # categories, or two values: no inside to speak of
        low, high = min(numbers), max(numbers)
        return None if low == high else float(value == high) if value in (low, high) else 0.5
    low, high = float(p.low), float(p.high)
    if p.type == "loguniform":
        low, high, value = math.log(low), math.log(high), math.log(value)
    return (value - low) / (high - low) if high > low else None


def edge_warnings(table: pd.DataFrame, params: tuple[space.Param, ...], metric: str,
                  top: int | None = None) -> list[str]:
    """A warning per numeric parameter whose best trials all sit at one end of its range.

    `table` is a leaderboard, best first. The top trials are the best tenth, at least 3 (fewer
    trials than that say nothing about edges).
    """
    ok = table.dropna(subset=[f"best_{metric}"])
    top = top or max(3, len(ok) // 10)
    if len(ok) < 3:
        return []
    best = ok.head(top)
    warnings = []
    for p in space.all_params(params):
        if p.name not in best or best[p.name].isna().any():
            continue
        positions = [_position(p, v) for v in best[p.name]]
        if any(x is None for x in positions):
            continue
        low, high = (p.low, p.high) if not p.is_choice else (min(p.values), max(p.values))
        for edge, near in (("high", all(x >= 1 - EDGE_FRACTION for x in positions)),
                           ("low", all(x <= EDGE_FRACTION for x in positions))):
            if near:
                warnings.append(
                    f"the best {len(best)} trials all have {p.name} at the {edge} edge of its range "
                    f"({low:g} .. {high:g}); the optimum may lie beyond it: widen params.{p.name}.{edge}"
                    if not p.is_choice else
                    f"the best {len(best)} trials all have {p.name} = {best[p.name].iloc[0]:g}, the {edge}est "
                    f"of its values; the optimum may lie beyond it: add values past {best[p.name].iloc[0]:g}")
    return warnings


def failure_groups(trials: pd.DataFrame) -> list[str]:
    """Failed trials (the results store's trials, with their `error`) grouped by status and
    cause, most frequent first: `12 errored: KeyError: 'features' (compute_loss, brake.py:31)`."""
    table = trials
    failed = table[table["status"].isin(FAILED_STATUSES)]
    if failed.empty:
        return []
    errors = failed["error"] if "error" in failed else pd.Series("", index=failed.index)
    causes = errors.fillna("").replace("", "no error text")
    # Alike but for numbers (the epoch a loss diverged at, the GiB CUDA wanted): one group,
    # shown by its first trial's text.
    shapes = causes.str.replace(r"\d+(\.\d+)?(e[-+]?\d+)?", "#", regex=True)
    grouped = failed.assign(cause=causes, shape=shapes).groupby(["status", "shape"], sort=False)
    counts = grouped.agg(n=("cause", "size"), example=("cause", "first")).sort_values("n", ascending=False, kind="stable")
    return [f"{row.n} {status}: {row.example}" + (f"; {FAILURE_HINTS[status]}" if status in FAILURE_HINTS else "")
            for (status, _), row in counts.iterrows()]


def all_failed(table: pd.DataFrame) -> bool:
    """No trial of the sweep got anywhere: each one errored or diverged."""
    return len(table) > 0 and bool(table["status"].isin(FAILED_STATUSES).all())


def failure_warning(table: pd.DataFrame) -> str | None:
    """A warning where a fifth or more of the trials (the store's, with `error`) failed."""
    failed = table["status"].isin(FAILED_STATUSES)
    if len(table) == 0 or failed.mean() < FAILURE_SHARE or all_failed(table):
        return None
    counts = table.loc[failed, "status"].value_counts()
    detail = ", ".join(f"{n} {s}" for s, n in counts.items())
    bad_input = "error" in table and table["error"].fillna("").str.contains(BAD_INPUT).any()
    hint = (f" Most often: {failure_groups(table)[0]}." if "diverged" not in counts or bad_input
            else " Diverged trials point at a learning-rate range that reaches too high.")
    return f"{failed.sum()} of {len(table)} trials failed ({detail}); the ranking covers the rest only.{hint}"


# Two-sided 97.5 % quantiles of Student's t for 1..30 degrees of freedom (then 1.96).
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
         2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
         2.052, 2.048, 2.045, 2.042)


def ci95_halfwidth(std: float, n: int) -> float:
    """Half the width of the 95 % interval of a mean of n values (Student's t); NaN for n < 2."""
    if n < 2 or std != std:
        return math.nan
    t = _T975[n - 2] if n - 1 <= len(_T975) else 1.96
    return float(t * std / np.sqrt(n))


def undefined_warning(trials: pd.DataFrame, metric: str) -> str | None:
    """Where no trial has a number for the ranked metric: why (the store's `why_nan`)."""
    column = f"best_{metric}"
    if trials.empty or (column in trials and trials[column].notna().any()):
        return None
    for text in trials.get("why_nan", pd.Series(dtype=str)).dropna():
        why = json.loads(text).get(metric) if text else None
        if why:
            return f"{metric} is NaN in every trial: {why}"
    return f"{metric} is NaN in every trial: no trial reported it as a number"
