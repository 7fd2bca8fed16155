"""Ray Tune's OptunaSearch, telling Optuna each trial's constraint values with its objectives.

Optuna's constrained samplers (TPE, GP, NSGA-II) read a trial's constraint values, each <= 0
where it holds (`objectives.Constraint.violation`). Ray's OptunaSearch tells Optuna only the
objectives, so `ConstrainedOptunaSearch` sets the values on the Optuna trial first, from the
same final result: with `Trial.set_constraint` (Optuna 5, which reads them in every sampler),
and as the user attribute "constraints" (a list in the spec's order), which `violations` hands
to the samplers' `constraints_func` where Optuna is older.

It also keeps a trial Optuna cannot rank from staying RUNNING in the study for good: Ray tells
a NaN objective, or one of several objectives missing, as COMPLETE, which Optuna refuses (Ray
logs it and moves on); a running trial counts as pending to GP and TPE for the rest of the
sweep. Such a trial is told as FAIL instead.

The class subclasses a Ray Tune class, and importing Ray Tune costs seconds that validating a
spec should not pay (the searchers' builders import it when called). So the module defines a
plain mixin, and `ConstrainedOptunaSearch` (the mixin over OptunaSearch) is made on its first
use through the module's `__getattr__` (PEP 562): a builder's `optuna_constraints.ConstrainedOptunaSearch`,
or pickle restoring a searcher in a fresh process, which finds the class by this module's name.
"""

from __future__ import annotations

import math
import numbers
import warnings

from raysweep.search.objectives import Constraint

USER_ATTR = "constraints"
CLASS_NAME = "ConstrainedOptunaSearch"
# Ray's define-by-run timer: a model-based sampler (GP above all) fits its model inside the first
# `suggest_*` of a trial, which Ray mistakes for training code in the space function.
SLOW_SPACE_WARNING = "Define-by-run function passed in the `space` argument took"


class RecordsConstraints:
    """Mixin over OptunaSearch: constraint values before Optuna's `tell`, FAIL for an unrankable trial."""

    def __init__(self, *args, constraints: tuple[Constraint, ...] = (), **kwargs):
        self.constraints = tuple(constraints)
        super().__init__(*args, **kwargs)

    def suggest(self, trial_id: str):
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=SLOW_SPACE_WARNING)
            return super().suggest(trial_id)

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        ot_trial = self._ot_trials.get(trial_id)
        if not result or ot_trial is None or trial_id in self._completed_trials:
            super().on_trial_complete(trial_id, result, error)
            return
        if not rankable(result, self.metric):
            super().on_trial_complete(trial_id, None, error=True)
            return
        if self.constraints:
            values = [c.violation(result.get(c.metric)) for c in self.constraints]
            ot_trial.set_user_attr(USER_ATTR, values)
            if hasattr(ot_trial, "set_constraint"):
                for constraint, value in zip(self.constraints, values):
                    ot_trial.set_constraint(constraint.text, value)
        super().on_trial_complete(trial_id, result, error)


def rankable(result: dict, metric: str | list[str]) -> bool:
    """Can Optuna take the result's objective values? A single missing one Ray tells as PRUNED
    (with the last reported value); NaN, or one of several missing, Optuna refuses."""
    values = [result.get(m) for m in metric] if isinstance(metric, list) else [result.get(metric)]
    if not isinstance(metric, list) and values[0] is None:
        return True
    return all(isinstance(v, numbers.Real) and not math.isnan(v) for v in values)


def violations(frozen_trial) -> list[float]:
    """Optuna's `constraints_func` (before Optuna 5): the values the searcher stored on the trial.
    Module-level, so that the sampler holding it pickles with the searcher."""
    return list(frozen_trial.user_attrs.get(USER_ATTR, ()))


def constraints_func(constraints: tuple[Constraint, ...]):
    """What a constrained sampler's `constraints_func` is: None where Optuna reads the values
    `Trial.set_constraint` stored (Optuna 5 on) or there are no constraints, else `violations`."""
    import optuna

    return None if not constraints or hasattr(optuna.trial.Trial, "set_constraint") else violations


def __getattr__(name: str):
    """`ConstrainedOptunaSearch`, made (and kept) on first use: see the module docstring."""
    if name != CLASS_NAME:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from ray.tune.search.optuna import OptunaSearch

    made = type(CLASS_NAME, (RecordsConstraints, OptunaSearch), {
        "__module__": __name__,
        "__doc__": "Ray Tune's OptunaSearch with the trials' constraint values told to Optuna (RecordsConstraints).",
    })
    globals()[CLASS_NAME] = made
    return made
