"""Several objectives and constraints: what a spec optimises, what it requires, and the Pareto front.

    metric: [val_loss, latency_ms]
    mode: [min, min]
    constraints: ["latency_ms <= 5", "val_auc >= 0.8"]

One objective stays the common case (`metric: val_loss`, `mode: min`). With several, the searchers
that handle them (random, grid, Optuna's TPE and NSGA-II) get every objective; the schedulers
that stop trials decide on the first, as `spec.metric` and `spec.mode` have always named it.

A constraint is Optuna's: a value `violation` that is <= 0 where it holds; a trial is feasible
where every constraint holds. Ranking follows Optuna's semantics too (`study.best_trials`, NSGA-II):
feasible trials before infeasible ones, then non-dominated sorting into fronts (front 1 is the
Pareto front), then crowding distance within a front (the more isolated first). Nothing here
imports Ray or pandas: the spec, the searchers and the analysis all use it.
"""

from __future__ import annotations

import math
import operator
import re
from dataclasses import dataclass
from typing import Sequence

import numpy as np

COMPARISONS = {"<=": operator.le, ">=": operator.ge, "<": operator.lt, ">": operator.gt}
CONSTRAINT = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_.]*)\s*(<=|>=|<|>)\s*([-+0-9.eE]+)\s*$")


@dataclass(frozen=True)
class Objective:
    metric: str
    mode: str   # "min" or "max"

    def better(self, a: float, b: float) -> bool:
        return a < b if self.mode == "min" else a > b


@dataclass(frozen=True)
class Constraint:
    metric: str
    op: str      # one of COMPARISONS
    bound: float

    @property
    def text(self) -> str:
        return f"{self.metric} {self.op} {self.bound:g}"

    def holds(self, value: float | None) -> bool:
        return _number(value) and COMPARISONS[self.op](value, self.bound)

    def violation(self, value: float | None) -> float:
        """Optuna's constraint value: <= 0 where it holds, else how far it is broken (a missing
        or NaN value: infinitely; a strict bound met exactly: by a hair)."""
        if not _number(value):
            return math.inf
        gap = value - self.bound if self.op in ("<=", "<") else self.bound - value
        return gap if self.holds(value) or gap > 0 else 1e-12


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not math.isnan(value)


def parse_constraint(text: str) -> Constraint:
    """`"latency_ms <= 5"` as a Constraint; ValueError with what is wrong otherwise."""
    found = CONSTRAINT.match(str(text))
    if not found:
        raise ValueError(f"{text!r} is not 'METRIC OP NUMBER' (OP one of <=, >=, <, >), e.g. 'latency_ms <= 5'")
    try:
        bound = float(found[3])
    except ValueError:
        raise ValueError(f"{text!r}: {found[3]!r} is not a number") from None
    return Constraint(found[1], found[2], bound)


def feasible(values: dict[str, float], constraints: Sequence[Constraint]) -> bool:
    return all(c.holds(values.get(c.metric)) for c in constraints)


def dominates(a: Sequence[float], b: Sequence[float], objectives: Sequence[Objective]) -> bool:
    """`a` is no worse than `b` on every objective and better on one (NaN is worst)."""
    strictly = False
    for x, y, o in zip(a, b, objectives):
        x, y = _worst_if_nan(x, o), _worst_if_nan(y, o)
        if o.better(y, x):
            return False
        strictly = strictly or o.better(x, y)
    return strictly


def _worst_if_nan(value: float, o: Objective) -> float:
    if value is None or math.isnan(value):
        return math.inf if o.mode == "min" else -math.inf
    return value


def fronts(points: Sequence[Sequence[float]], objectives: Sequence[Objective]) -> list[int]:
    """Each point's front: 1 for the non-dominated (the Pareto front), 2 for those dominated only
    by front 1, and so on (Deb's non-dominated sorting). Pairs are compared at once in numpy:
    2,000 trials of two objectives take milliseconds, not the seconds of a loop over pairs."""
    n = len(points)
    if n == 0:
        return []
    # Every objective as one to minimise, NaN the worst.
    costs = np.array([[_worst_if_nan(p[k], o) * (1 if o.mode == "min" else -1) for k, o in enumerate(objectives)]
                      for p in points], dtype=float).reshape(n, len(objectives))
    no_worse = (costs[:, None, :] <= costs[None, :, :]).all(axis=2)
    better = (costs[:, None, :] < costs[None, :, :]).any(axis=2)
    dominates_matrix = no_worse & better           # [i, j]: i dominates j
    dominated_by = dominates_matrix.sum(axis=0)
    rank = np.zeros(n, dtype=int)
    level, current = 1, np.flatnonzero(dominated_by == 0)
    while current.size:
        rank[current] = level
        dominated_by = dominated_by - dominates_matrix[current].sum(axis=0)
        dominated_by[rank > 0] = -1
        current, level = np.flatnonzero(dominated_by == 0), level + 1
    return rank.tolist()


def crowding(points: Sequence[Sequence[float]], objectives: Sequence[Objective]) -> list[float]:
    """NSGA-II's crowding distance of each point within its own set (call it per front): the
    ends of each objective's range are infinitely far, the rest by their neighbours' gap."""
    n = len(points)
    distance = [0.0] * n
    if n <= 2:
        return [math.inf] * n
    for k, o in enumerate(objectives):
        values = [_worst_if_nan(p[k], o) for p in points]
        order = sorted(range(n), key=lambda i: values[i])
        low, high = values[order[0]], values[order[-1]]
        distance[order[0]] = distance[order[-1]] = math.inf
        span = high - low
        if not math.isfinite(span) or span == 0:
            continue
        for before, here, after in zip(order, order[1:], order[2:]):
            distance[here] += (values[after] - values[before]) / span
    return distance


def pareto_order(points: Sequence[Sequence[float]], objectives: Sequence[Objective],
                 is_feasible: Sequence[bool]) -> tuple[list[int], list[int], list[float]]:
    """(order, front of each point, crowding of each point): feasible points first, each group
    sorted by front and then by crowding distance (larger first). Infeasible points get their
    fronts among themselves, after every feasible one (Optuna's constrained domination)."""
    n = len(points)
    front = [0] * n
    crowd = [0.0] * n
    offset = 0
    for group in ([i for i in range(n) if is_feasible[i]], [i for i in range(n) if not is_feasible[i]]):
        if not group:
            continue
        ranks = fronts([points[i] for i in group], objectives)
        for level in sorted(set(ranks)):
            members = [group[k] for k, r in enumerate(ranks) if r == level]
            for i, d in zip(members, crowding([points[i] for i in members], objectives)):
                front[i], crowd[i] = level + offset, d
        offset += max(ranks)
    order = sorted(range(n), key=lambda i: (front[i], -crowd[i]))
    return order, front, crowd
