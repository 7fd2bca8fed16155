"""The searcher registry: for each `search.algorithm`, how Tune gets the space and what a spec may ask.

| algorithm | Ray Tune searcher (seeded)                         | `type: grid` params    | branches (`when:`) |
|-----------|----------------------------------------------------|------------------------|--------------------|
| random    | BasicVariantGenerator; with branches, OptunaSearch | enumerated, the rest   | yes                |
|           | with Optuna's RandomSampler (define-by-run)        | sampled                |                    |
| grid      | BasicVariantGenerator, every value enumerated      | every parameter        | no                 |
| optuna    | OptunaSearch with TPE (define-by-run)              | refused                | yes                |
| hyperopt  | HyperOptSearch with TPE (nested hp.choice)         | refused                | yes                |

Optuna's define-by-run space and HyperOpt's nested choices sample a branch's sub-parameters
only on that branch, so a trial's config holds just the parameters that exist for it.
Tune ignores `TuneConfig.max_concurrent_trials` when given a searcher, so the limit goes into
BasicVariantGenerator or a ConcurrencyLimiter around the others.

Adding a searcher is one entry in `SEARCHERS`: its builder and its rules. Spec validation
(`raysweep.spec`) reads the rules; the sweep calls the builder. Ray Tune's searcher classes are
imported inside the builders: importing them costs seconds (Optuna, HyperOpt), and validating a
spec should not pay for them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Literal, get_args

from raysweep.search import space
from raysweep.search.space import Param


@dataclass(frozen=True)
class Request:
    """What a builder gets: the space, the objective, the seed, the points to evaluate first."""

    params: tuple[Param, ...]
    fixed: dict               # values every trial gets as they are
    metric: str
    mode: str
    seed: int | None
    points: list[dict]        # decoded values, evaluated first in this order
    max_concurrent: int


GridRule = Literal["every", "marked", "refused"]


@dataclass(frozen=True)
class Searcher:
    """One `search.algorithm`: its builder and the rules `validate` checks a spec against.

    `grid`: "every" enumerates every parameter (only choice or grid ones allowed), "marked"
    enumerates the `type: grid` ones and samples the rest, "refused" samples every value and
    rejects `type: grid`. `branches`: accepts conditional sub-parameters (`when:`).
    """

    build: Callable[[Request], tuple[dict, object]]   # -> (Tuner param_space, Tune searcher)
    grid: GridRule
    branches: bool
    default_num_samples: int = 8   # a grid enumerates its values once; then it counts repeats

    def __post_init__(self):
        if self.grid not in get_args(GridRule):
            raise ValueError(f"Searcher.grid must be one of {get_args(GridRule)}, got {self.grid!r}")


def tune_domains(params: tuple[Param, ...], *, grid_every: bool) -> dict:
    """Tune domains for the tuned values (BasicVariantGenerator's space)."""
    from ray import tune  # see the module docstring: builders import Ray Tune

    out = {}
    for p in params:
        if p.is_choice:
            values = [p.encode(v) for v in p.values]
            out[p.name] = tune.grid_search(values) if p.type == "grid" or grid_every else tune.choice(values)
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
    from hyperopt import hp  # an optional integration, imported by its builder alone

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


def _encoded_points(request: Request) -> list[dict] | None:
    return [encode_point(p, request.params) for p in request.points] or None


def _variants(request: Request, *, grid_every: bool) -> tuple[dict, object]:
    from ray.tune.search.basic_variant import BasicVariantGenerator

    return ({**request.fixed, **tune_domains(request.params, grid_every=grid_every)},
            BasicVariantGenerator(random_state=request.seed, max_concurrent=request.max_concurrent,
                                  points_to_evaluate=_encoded_points(request)))


def _optuna(request: Request, *, tpe: bool) -> tuple[dict, object]:
    import optuna
    from ray.tune.search import ConcurrencyLimiter
    from ray.tune.search.optuna import OptunaSearch

    sampler = optuna.samplers.TPESampler(seed=request.seed) if tpe else optuna.samplers.RandomSampler(seed=request.seed)
    searcher = OptunaSearch(OptunaSpace(request.params), sampler=sampler, points_to_evaluate=_encoded_points(request),
                            metric=request.metric, mode=request.mode)
    return request.fixed, ConcurrencyLimiter(searcher, max_concurrent=request.max_concurrent)


def build_random(request: Request) -> tuple[dict, object]:
    """Tune's seeded variant generator; Optuna's RandomSampler where branches need define-by-run."""
    if space.has_conditionals(request.params):
        return _optuna(request, tpe=False)
    return _variants(request, grid_every=False)


def build_grid(request: Request) -> tuple[dict, object]:
    return _variants(request, grid_every=True)


def build_optuna(request: Request) -> tuple[dict, object]:
    return _optuna(request, tpe=True)


def build_hyperopt(request: Request) -> tuple[dict, object]:
    from ray.tune.search import ConcurrencyLimiter
    from ray.tune.search.hyperopt import HyperOptSearch

    points = _encoded_points(request)
    searcher = HyperOptSearch(hyperopt_space(request.params), random_state_seed=request.seed,
                              points_to_evaluate=[_hyperopt_point(p, request.params) for p in points] if points else None,
                              metric=request.metric, mode=request.mode)
    return request.fixed, ConcurrencyLimiter(searcher, max_concurrent=request.max_concurrent)


SEARCHERS: dict[str, Searcher] = {
    "random": Searcher(build_random, grid="marked", branches=True),
    "grid": Searcher(build_grid, grid="every", branches=False, default_num_samples=1),
    "optuna": Searcher(build_optuna, grid="refused", branches=True),
    "hyperopt": Searcher(build_hyperopt, grid="refused", branches=True),
}


def accepting(*, grid: GridRule | None = None, branches: bool | None = None) -> list[str]:
    """The searchers whose rules match, in registry order (for messages that name the fix)."""
    return [name for name, s in SEARCHERS.items()
            if (grid is None or s.grid == grid) and (branches is None or s.branches == branches)]


def planned_trials(algorithm: str, params: tuple[Param, ...], num_samples: int) -> int:
    """How many trials a sweep runs: `num_samples` times the size of what the searcher enumerates."""
    grid = SEARCHERS[algorithm].grid
    size = 1
    for p in params:
        if p.type == "grid" or (grid == "every" and p.is_choice):
            size *= len(p.values)
    return num_samples * size
