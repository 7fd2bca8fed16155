"""Which trial to deploy when a sweep has several objectives or constraints: a pick.

    raysweep export EXPERIMENT --to champion --pick 'min val_loss where latency_ms <= 5'
    raysweep export EXPERIMENT --to champion --objective val_loss --constraint 'latency_ms <= 5'

Grammar: `min|max METRIC [where CONSTRAINT [and CONSTRAINT]...]`, each CONSTRAINT as a spec's
`constraints` write it (`METRIC OP NUMBER`, OP one of <=, >=, <, >). `--objective METRIC` takes
its direction from the spec's objectives, else from what the workload declares.

A pick chooses from the trials that did not fail and meet every constraint, the spec's and
the pick's, each read at the epoch where the first objective was best (the weights `export`
writes: analysis.pareto). With several objectives it chooses along their Pareto front, drawn
over those trials (Optuna's constrained domination: a constraint removes trials before the
front is drawn, so a pick is never refused while a trial meets it), and takes the front's best
on its METRIC, which need not be an objective (the front's best val_auc). With one objective
the front is one trial, so the pick ranks every trial that meets the constraints on METRIC.
Without a pick, the champion of several objectives is the front's best on the first objective.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Sequence

import pandas as pd

from raysweep.analysis import pareto
from raysweep.checks import did_you_mean
from raysweep.errors import UserError
from raysweep.search import objectives as goals
from raysweep.search.objectives import Constraint, Objective
from raysweep.spec import SpecError
from raysweep.spec.validate import reported_metrics

GRAMMAR = "min|max METRIC [where CONSTRAINT [and CONSTRAINT]...]"
EXAMPLE = "min val_loss where latency_ms <= 5"
_HEAD = re.compile(r"^\s*(min|max)\s+([A-Za-z_][A-Za-z0-9_.]*)(?:\s+where\s+(.*?))?\s*$", re.DOTALL)


class NoneMeets(SpecError):
    """No trial meets what the choice asks (the spec's constraints, a pick's): nothing to deploy."""


@dataclass(frozen=True)
class Pick:
    objective: Objective
    constraints: tuple[Constraint, ...] = ()

    @property
    def text(self) -> str:
        where = " and ".join(c.text for c in self.constraints)
        return f"{self.objective.mode} {self.objective.metric}" + (f" where {where}" if where else "")


@dataclass(frozen=True)
class Chosen:
    trial: str
    value: float     # the pick's metric at the epoch the exported weights come from
    record: dict     # what the model card records of the choice (`choice`)


def parse(text: str) -> Pick:
    """`--pick` as a Pick; a UserError naming the grammar where it does not follow it."""
    found = _HEAD.match(str(text))
    if not found or (found[3] is not None and not found[3].strip()):
        raise UserError(f"--pick {text!r}: not {GRAMMAR!r}, e.g. {EXAMPLE!r}")
    constraints = []
    for part in re.split(r"\s+and\s+", found[3]) if found[3] else []:
        try:
            constraints.append(goals.parse_constraint(part))
        except ValueError as exc:
            raise UserError(f"--pick {text!r}: {exc}") from None
    return Pick(Objective(found[2], found[1]), tuple(constraints))


def directions(spec) -> dict[str, str]:
    """Each metric's direction: the spec's objectives, else what its workload declares."""
    try:
        declared = reported_metrics(spec.workload, spec.fixed)
    except UserError:   # a user's workload this machine lacks: the spec's objectives only
        declared = {}
    return {**declared, **{o.metric: o.mode for o in spec.objectives}}


def from_options(spec, *, pick: str | None, objective: str | None, constraints: Sequence[str]) -> Pick | None:
    """The Pick that `export --pick`, or `--objective` and `--constraint`, ask for (None: neither)."""
    if pick is not None:
        if objective is not None or constraints:
            raise UserError("--pick says it all: give it, or --objective and --constraint, not both")
        return parse(pick)
    if objective is None and not constraints:
        return None
    metric = objective or spec.metric
    mode = directions(spec).get(metric)
    if mode is None:
        raise UserError(f"--objective {metric}: its direction is not known (neither an objective of the spec nor "
                        f"declared by its workload); say it with --pick 'min {metric}' or --pick 'max {metric}'")
    found = []
    for text in constraints:
        try:
            found.append(goals.parse_constraint(text))
        except ValueError as exc:
            raise UserError(f"--constraint: {exc}") from None
    return Pick(Objective(metric, mode), tuple(found))


def check(pick: Pick, spec, known: list[str]) -> None:
    """Every metric the pick names must be one the trials report, in its own direction."""
    problems = []
    for metric in dict.fromkeys([pick.objective.metric, *(c.metric for c in pick.constraints)]):
        if metric not in known:
            problems.append(f"--pick {pick.text!r}: {metric} is not a metric of this experiment."
                            f"{did_you_mean(metric, known)} Known: {', '.join(known)}.")
    declared = directions(spec).get(pick.objective.metric)
    if declared and declared != pick.objective.mode:
        fixed = Pick(Objective(pick.objective.metric, declared), pick.constraints)
        problems.append(f"--pick {pick.text!r}: {pick.objective.metric} is better when "
                        f"{'lower' if declared == 'min' else 'higher'}: --pick {fixed.text!r}")
    if problems:
        raise UserError(problems)


def choose(trials: pd.DataFrame, curves: pd.DataFrame, spec, pick: Pick, *, by_default: bool = False) -> Chosen:
    """The trial `pick` chooses (the module's docstring says how), with the record of the choice.

    `trials` is the store's trials table annotated for the spec (analysis.pareto); `by_default`
    marks the spec's own choice (no pick given), recorded without a pick text.

    Raises:
        NoneMeets: no trial meets the spec's constraints, or none of those meets the pick's.
    """
    first = spec.objectives[0]
    metrics = list(dict.fromkeys([*pareto.point_metrics(spec.objectives, spec.constraints), pick.objective.metric,
                                  *(c.metric for c in pick.constraints)]))
    feasible = trials[trials[pareto.FEASIBLE].astype(bool)] if len(trials) else trials
    if feasible.empty:
        raise NoneMeets([_none_feasible(trials, spec)])
    values = pareto.at_best(curves, first, metrics).reindex(feasible["trial"])
    meeting = values[[goals.feasible(row, pick.constraints) for row in values[metrics].to_dict("records")]]
    if meeting.empty:
        raise NoneMeets([_none_meets(values, pick, len(feasible), first)])
    candidates = _front(meeting, spec.objectives) if spec.multi_objective else meeting
    scores = candidates[pick.objective.metric].dropna()
    if scores.empty:
        raise NoneMeets([f"--pick {pick.text!r}: no trial it could choose reported {pick.objective.metric}"])
    trial = scores.idxmin() if pick.objective.mode == "min" else scores.idxmax()
    record = {
        "pick": None if by_default else pick.text,
        "rule": _rule(spec, pick, by_default),
        "objectives": [{"metric": o.metric, "mode": o.mode} for o in spec.objectives],
        "constraints": [c.text for c in spec.constraints],
        "pick_constraints": [c.text for c in pick.constraints],
        "values_at": f"the epoch where {first.metric} was best: the weights exported",
        "feasible_trials": len(feasible),
        "meeting_the_pick": len(meeting),
        "trial": trial,
    }
    if spec.multi_objective:
        shown = list(dict.fromkeys([*(o.metric for o in spec.objectives), pick.objective.metric]))
        record["front"] = [{"trial": t, **{m: _plain(row[m]) for m in shown}} for t, row in candidates.iterrows()]
    return Chosen(trial, float(scores[trial]), record)


def _front(values: pd.DataFrame, objectives: Sequence[Objective]) -> pd.DataFrame:
    """The non-dominated rows of `values` (one per trial) on the objectives, in crowding order."""
    points = values[[o.metric for o in objectives]].to_numpy(float).tolist()
    order, front, _ = goals.pareto_order(points, objectives, [True] * len(points))
    return values.iloc[[i for i in order if front[i] == 1]]


def _rule(spec, pick: Pick, by_default: bool) -> str:
    """The choice in words, as `export` prints it and the card records it."""
    among = "on the Pareto front of the feasible trials" if spec.multi_objective else "of the feasible trials"
    if by_default:
        return f"the best {pick.objective.metric} (the first objective) {among}"
    return f"{pick.text}: the best {pick.objective.metric} {among} that meet it"


def _none_feasible(trials: pd.DataFrame, spec) -> str:
    texts = ", ".join(c.text for c in spec.constraints) or "none"
    return (f"no trial meets the spec's constraints ({texts}) at the epoch its {spec.metric} was best, and did "
            f"not fail ({len(trials)} trials); nothing to choose: raysweep rank shows each trial's values")


def _none_meets(values: pd.DataFrame, pick: Pick, n_feasible: int, first: Objective) -> str:
    """Why nobody meets the pick: for each of its constraints, the closest a feasible trial came."""
    closest = []
    for c in pick.constraints:
        column = values[c.metric].dropna()
        if column.empty:
            closest.append(f"no feasible trial reported {c.metric}")
            continue
        trial = column.idxmin() if c.op in ("<=", "<") else column.idxmax()
        closest.append(f"the best {c.metric} is {column[trial]:.4g} (trial {trial})")
    return (f"--pick {pick.text!r}: none of the {n_feasible} feasible trials meets it at the epoch its {first.metric} "
            f"was best: {'; '.join(closest)}")


def _plain(value) -> float | None:
    value = float(value)
    return None if math.isnan(value) else value
