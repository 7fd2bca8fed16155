"""Spec -> what Tune searches: the `param_space` and a searcher holding the concurrency limit.

| spec                              | searcher                                     | space          |
|-----------------------------------|----------------------------------------------|----------------|
| random or grid, no branches       | Tune's BasicVariantGenerator (seeded)        | Tune domains   |
| random with branches (`when:`)    | OptunaSearch with Optuna's RandomSampler     | define-by-run  |
| optuna                            | OptunaSearch with TPE (seeded)               | define-by-run  |
| hyperopt                          | HyperOptSearch with TPE (seeded)             | nested hp.choice |

Optuna's define-by-run space and HyperOpt's nested choices sample a branch's sub-parameters
only on that branch, so a trial's config holds just the parameters that exist for it.
Tune ignores `TuneConfig.max_concurrent_trials` when given a searcher, so the limit goes into
BasicVariantGenerator or a ConcurrencyLimiter around the others.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from raysweep import space
from raysweep.space import Param


def tune_domains(spec) -> dict:
    """Fixed values plus Tune domains for the tuned ones (BasicVariantGenerator's space)."""
    from ray import tune

    out = {}
    grid = spec.search.algorithm == "grid"
    for p in spec.params:
        if p.is_choice:
            values = [p.encode(v) for v in p.values]
            out[p.name] = tune.grid_search(values) if p.type == "grid" or grid else tune.choice(values)
        elif p.type == "uniform":
            out[p.name] = tune.uniform(p.low, p.high)
        elif p.type == "loguniform":
            out[p.name] = tune.loguniform(p.low, p.high)
        elif p.type == "randint":
            out[p.name] = tune.randint(p.low, p.high + 1)  # spec bounds are inclusive
    return out


@dataclass(frozen=True)
class OptunaSpace:
    """Optuna define-by-run space: a branch's sub-parameters are suggested only on that branch.

    A dataclass rather than a closure so that Tune can pickle the searcher with its state.
    """

    params: tuple[Param, ...]

    def __call__(self, trial) -> None:
        for p in self.params:
            self.suggest(trial, p)

    def suggest(self, trial, p: Param) -> None:
        if p.is_choice:
            encoded = trial.suggest_categorical(p.name, [p.encode(v) for v in p.values])
            value = next(v for v in p.values if p.encode(v) == encoded)
            for sub in p.branch(value):
                self.suggest(trial, sub)
        elif p.type == "randint":
            trial.suggest_int(p.name, p.low, p.high)
        else:
            trial.suggest_float(p.name, p.low, p.high, log=p.type == "loguniform")


def hyperopt_space(params: tuple[Param, ...]) -> dict:
    """HyperOpt space; a choice with branches becomes a choice between sub-spaces."""
    from hyperopt import hp

    def domain(p: Param):
        if p.type == "uniform":
            return hp.uniform(p.name, p.low, p.high)
        if p.type == "loguniform":
            return hp.loguniform(p.name, math.log(p.low), math.log(p.high))
        if p.type == "randint":
            return hp.uniformint(p.name, p.low, p.high)
        if not p.when:
            return hp.choice(p.name, [p.encode(v) for v in p.values])
        return hp.choice(p.name, [{p.name: p.encode(v), **{s.name: domain(s) for s in p.branch(v)}}
                                  for v in p.values])

    # Branching choices sit under their own key so that Tune does not try to turn a given
    # point's value into an index it cannot find among sub-spaces; `space.decode` lifts them.
    return {p.name + space.BRANCH_SUFFIX if p.when else p.name: domain(p) for p in params}


def _hyperopt_point(point: dict, params: tuple[Param, ...]) -> dict:
    """HyperOpt wants the index of a branching choice's value; Tune converts plain choices."""
    out = {}
    for name, value in point.items():
        p = next((q for q in params if q.name == name), None)
        out[name] = list(p.values).index(value) if p is not None and p.when else value
    return out


def encode_point(point: dict, params: tuple[Param, ...]) -> dict:
    by_name = {p.name: p for p in space.all_params(params)}
    return {k: by_name[k].encode(v) if k in by_name else v for k, v in point.items()}


def fixed_values(spec) -> dict:
    """The spec's fixed values; every trial starts from the search seed unless seeds are swept."""
    fixed = dict(spec.fixed)
    if "seed" not in spec.tuned:
        fixed.setdefault("seed", spec.search.seed or 0)
    return fixed


def build(spec, *, max_concurrent: int, points: list[dict]) -> tuple[dict, object]:
    """The Tuner's `param_space` and searcher for a spec; `points` are evaluated first."""
    from ray.tune.search import ConcurrencyLimiter
    from ray.tune.search.basic_variant import BasicVariantGenerator

    fixed = fixed_values(spec)
    encoded = [encode_point(p, spec.params) for p in points] or None
    algorithm, seed = spec.search.algorithm, spec.search.seed
    if algorithm in ("random", "grid") and not space.has_conditionals(spec.params):
        return ({**fixed, **tune_domains(spec)},
                BasicVariantGenerator(random_state=seed, max_concurrent=max_concurrent,
                                      points_to_evaluate=encoded))
    objective = dict(metric=spec.metric, mode=spec.mode)
    if algorithm == "hyperopt":
        from ray.tune.search.hyperopt import HyperOptSearch

        hp_points = [_hyperopt_point(p, spec.params) for p in encoded] if encoded else None
        searcher = HyperOptSearch(hyperopt_space(spec.params), random_state_seed=seed,
                                  points_to_evaluate=hp_points, **objective)
    else:
        import optuna
        from ray.tune.search.optuna import OptunaSearch

        sampler = (optuna.samplers.TPESampler(seed=seed) if algorithm == "optuna"
                   else optuna.samplers.RandomSampler(seed=seed))
        searcher = OptunaSearch(OptunaSpace(spec.params), sampler=sampler,
                                points_to_evaluate=encoded, **objective)
    return fixed, ConcurrencyLimiter(searcher, max_concurrent=max_concurrent)
