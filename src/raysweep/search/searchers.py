"""The searcher registry: for each `search.algorithm`, how Tune gets the space and what a spec may ask.

| algorithm | Ray Tune searcher (seeded)                         | `type: grid` params    | branches (`when:`) |
|-----------|----------------------------------------------------|------------------------|--------------------|
| random    | BasicVariantGenerator; with branches, OptunaSearch | enumerated, the rest   | yes                |
|           | with Optuna's RandomSampler (define-by-run)        | sampled                |                    |
| grid      | BasicVariantGenerator, every value enumerated      | every parameter        | no                 |
| optuna    | OptunaSearch with `search.sampler` (define-by-run; | refused                | yes                |
|           | default TPE; search/samplers.py)                   |                        |                    |
| hyperopt  | HyperOptSearch with TPE (nested hp.choice)         | refused                | yes                |
| bohb      | TuneBOHB (with `scheduler.type: bohb`)             | refused                | no                 |

Optuna's define-by-run space and HyperOpt's nested choices sample a branch's sub-parameters
only on that branch, so a trial's config holds just the parameters that exist for it.
Optuna gets every objective (a study with several directions where the spec names several:
Ray's OptunaSearch takes lists of metrics and modes, and keeps them when the Tuner's single
metric, the first objective that schedulers stop on, reaches `set_search_properties`, as it
already holds its space) and each trial's constraint values (search/optuna_constraints.py).
Tune ignores `TuneConfig.max_concurrent_trials` when given a searcher, so the limit goes into
BasicVariantGenerator or a ConcurrencyLimiter around the others.

Where the variant generator has a grid to run (`grid`, or `random` with `type: grid` values),
raysweep enumerates it itself: the given points first, then each grid cell `num_samples`
times (a given point that pins every grid value takes one of its cell's turns). Under a
scheduler that stops trials early the cells come in a seeded random order: in grid order a
rung of ASHA fills with a sorted sequence in which each trial beats the one before, so every
one is promoted and early stopping saves next to nothing (bench/search_efficiency.py).

Only `optuna` steers by the constraints (through its sampler, where that one does: samplers.py);
the others sample as if there were none, which `validate` notes (`Searcher.constraints`).

Adding a searcher is one entry in `SEARCHERS`: its builder and its rules. Spec validation
(`raysweep.spec`) reads the rules; the sweep calls the builder. The searchers read no options of
their own (their sampler does: `search.sampler`); one that needs some would carry an `Options`
dataclass as the samplers and schedulers do (search/options.py). Ray Tune's searcher classes are
imported inside the builders: importing them costs seconds (Optuna, HyperOpt), and validating a
spec should not pay for them.
"""

from __future__ import annotations

import itertools
import math
import random
import warnings
from dataclasses import dataclass
from typing import Callable, Literal, get_args

from raysweep.search import optuna_constraints, space
from raysweep.search.objectives import Constraint, Objective
from raysweep.search.samplers import DEFAULT as DEFAULT_SAMPLER
from raysweep.search.samplers import SAMPLERS
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
    num_samples: int = 1
    shuffle_grid: bool = False       # the scheduler stops trials early: grid cells in a seeded random order
    scheduler_pauses: bool = False   # synchronous brackets: paused trials must not hold back new ones
    objectives: tuple[Objective, ...] = ()     # every objective, the first being (metric, mode)
    constraints: tuple[Constraint, ...] = ()   # for the samplers that take constraint values
    sampler: str | None = None                 # optuna: one of SAMPLERS (None: tpe)
    sampler_options: object | None = None      # that sampler's Options as validated (None: its defaults)

    @property
    def goals(self) -> tuple[Objective, ...]:
        """Every objective; a Request made with only `metric` and `mode` has that one."""
        return self.objectives or (Objective(self.metric, self.mode),)


@dataclass(frozen=True)
class SearchPlan:
    """What a builder returns: the Tuner's `param_space`, its searcher and `num_samples`."""

    param_space: dict
    searcher: object
    num_samples: int


GridRule = Literal["every", "marked", "refused"]


@dataclass(frozen=True)
class Searcher:
    """One `search.algorithm`: its builder and the rules `validate` checks a spec against.

    `grid`: "every" enumerates every parameter (only choice or grid ones allowed), "marked"
    enumerates the `type: grid` ones and samples the rest, "refused" samples every value and
    rejects `type: grid`. `branches`: accepts conditional sub-parameters (`when:`).
    `pausing`: works under a scheduler that pauses trials (hyperband, bohb): it must keep
    proposing while a bracket's trials wait paused, which Tune's ConcurrencyLimiter (it counts
    paused trials as running) does not, so a bracket would be halved before it filled.
    """

    build: Callable[[Request], SearchPlan]
    grid: GridRule
    branches: bool
    pausing: bool = False
    objectives: bool = False       # takes several objectives (the Pareto front), not only the first
    samplers: bool = False         # takes `search.sampler` (raysweep.search.samplers.SAMPLERS)
    constraints: bool = False      # steers by the trials' constraint values (optuna: where its sampler does)
    default_num_samples: int = 8   # a grid enumerates its values once; then it counts repeats

    def __post_init__(self):
        if self.grid not in get_args(GridRule):
            raise ValueError(f"Searcher.grid must be one of {get_args(GridRule)}, got {self.grid!r}")


def tune_domains(params: tuple[Param, ...]) -> dict:
    """Tune domains for the tuned values. A grid's values are a choice here: the grid itself
    goes to the variant generator as points (grid_points), so a given point that leaves a grid
    value open draws it."""
    from ray import tune  # see the module docstring: builders import Ray Tune

    out = {}
    for p in params:
        if p.is_choice:
            out[p.name] = tune.choice([p.encode(v) for v in p.values])
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


def grid_params(params: tuple[Param, ...], *, grid_every: bool) -> list[Param]:
    """The parameters whose values the variant generator enumerates."""
    return [p for p in params if p.is_choice and (grid_every or p.type == "grid")]


def grid_points(request: Request, *, grid_every: bool) -> list[dict]:
    """Every trial's grid values (decoded), given points first; cells in a seeded random order
    under an early-stopping scheduler, in grid order otherwise."""
    gridded = grid_params(request.params, grid_every=grid_every)
    cells = [dict(zip((p.name for p in gridded), values))
             for values in itertools.product(*(p.values for p in gridded))] * request.num_samples
    for point in request.points:   # a given point takes one turn of the cell it pins
        pinned = {p.name: point[p.name] for p in gridded if p.name in point}
        if len(pinned) == len(gridded) and pinned in cells:
            cells.remove(pinned)
    if request.shuffle_grid:
        random.Random(request.seed).shuffle(cells)
    return [*request.points, *cells]


def _variants(request: Request, *, grid_every: bool) -> SearchPlan:
    """Tune's seeded variant generator, with the grid (if any) handed over as points (grid_points)."""
    from ray.tune.search.basic_variant import BasicVariantGenerator

    domains = tune_domains(request.params)
    # Its limit counts paused trials; under a pausing scheduler the trials' resources bound
    # how many run at once instead (runner.resources).
    limit = 0 if request.scheduler_pauses else request.max_concurrent
    if not grid_params(request.params, grid_every=grid_every):
        return SearchPlan({**request.fixed, **domains},
                          BasicVariantGenerator(random_state=request.seed, max_concurrent=limit,
                                                points_to_evaluate=_encoded_points(request)),
                          request.num_samples)
    points = [encode_point(p, request.params) for p in grid_points(request, grid_every=grid_every)]
    return SearchPlan({**request.fixed, **domains},
                      BasicVariantGenerator(random_state=request.seed, max_concurrent=limit, points_to_evaluate=points),
                      len(points))


def _optuna(request: Request, *, sampler: str, options: object | None = None) -> SearchPlan:
    """Ray Tune's OptunaSearch over the define-by-run space with one of SAMPLERS, seeded, given
    every objective and (ConstrainedOptunaSearch) every trial's constraint values."""
    import optuna
    from ray.tune.search import ConcurrencyLimiter

    # Optuna announces each study it creates ("A new study created in memory") at INFO on the
    # console; the sweep's own lines say what matters.
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    entry, goals = SAMPLERS[sampler], request.goals
    if len(goals) > 1 and not entry.objectives:
        raise ValueError(f"the {sampler} sampler optimises one objective, got {len(goals)} (validate refuses this)")
    # Only the samplers that steer by constraints get their values (the others warn each trial
    # that they will not use them); validate has said so.
    constraints = request.constraints if entry.constraints else ()
    several = len(goals) > 1
    built = entry.build(entry.Options() if options is None else options, request.seed,
                        optuna_constraints.constraints_func(constraints))
    searcher = optuna_constraints.ConstrainedOptunaSearch(
        OptunaSpace(request.params), sampler=built,
        points_to_evaluate=_encoded_points(request), constraints=constraints,
        metric=[g.metric for g in goals] if several else goals[0].metric,
        mode=[g.mode for g in goals] if several else goals[0].mode)
    if request.scheduler_pauses and sampler == "random":
        # Random draws learn nothing from results, so all may be drawn at once; the limiter
        # would count paused trials (Searcher.pausing), the trials' resources bound them instead.
        return SearchPlan(request.fixed, searcher, request.num_samples)
    return SearchPlan(request.fixed, ConcurrencyLimiter(searcher, max_concurrent=request.max_concurrent),
                      request.num_samples)


def build_random(request: Request) -> SearchPlan:
    """Tune's seeded variant generator; Optuna's RandomSampler where branches need define-by-run."""
    if space.has_conditionals(request.params):
        return _optuna(request, sampler="random")
    return _variants(request, grid_every=False)


def build_grid(request: Request) -> SearchPlan:
    return _variants(request, grid_every=True)


def build_optuna(request: Request) -> SearchPlan:
    return _optuna(request, sampler=request.sampler or DEFAULT_SAMPLER, options=request.sampler_options)


def build_hyperopt(request: Request) -> SearchPlan:
    from ray.tune.search import ConcurrencyLimiter
    from ray.tune.search.hyperopt import HyperOptSearch

    points = _encoded_points(request)
    searcher = HyperOptSearch(hyperopt_space(request.params), random_state_seed=request.seed,
                              points_to_evaluate=[_hyperopt_point(p, request.params) for p in points] if points else None,
                              metric=request.metric, mode=request.mode)
    return SearchPlan(request.fixed, ConcurrencyLimiter(searcher, max_concurrent=request.max_concurrent),
                      request.num_samples)


def build_bohb(request: Request) -> SearchPlan:
    """BOHB's model-based sampler; it proposes configs for HyperBandForBOHB's brackets
    (search.schedulers), which is why the spec pairs the two.

    HpBandSter draws from NumPy's global generator (ConfigSpace's is seeded through TuneBOHB),
    so that is seeded too, in the driver that runs the searcher; statsmodels' notice about its
    future default generator, raised on each of BOHB's model fits, is for HpBandSter's authors.
    """
    import numpy as np
    from ray.tune.search.bohb import TuneBOHB

    warnings.filterwarnings("ignore", message="After 0.17 or January 2028", category=FutureWarning)
    if request.seed is not None:
        np.random.seed(request.seed)

    space = TuneBOHB.convert_search_space(tune_domains(request.params))
    # TuneBOHB limits the trials it runs itself, not counting paused ones (ConcurrencyLimiter would).
    searcher = TuneBOHB(space=space, metric=request.metric, mode=request.mode, seed=request.seed,
                        points_to_evaluate=_encoded_points(request), max_concurrent=request.max_concurrent)
    return SearchPlan(request.fixed, searcher, request.num_samples)


SEARCHERS: dict[str, Searcher] = {
    "random": Searcher(build_random, grid="marked", branches=True, pausing=True, objectives=True),
    "grid": Searcher(build_grid, grid="every", branches=False, default_num_samples=1, pausing=True, objectives=True),
    "optuna": Searcher(build_optuna, grid="refused", branches=True, objectives=True, samplers=True, constraints=True),
    "hyperopt": Searcher(build_hyperopt, grid="refused", branches=True),
    "bohb": Searcher(build_bohb, grid="refused", branches=False, pausing=True),
}


def accepting(*, grid: GridRule | None = None, branches: bool | None = None,
              objectives: bool | None = None) -> list[str]:
    """The searchers whose rules match, in registry order (for messages that name the fix)."""
    return [name for name, s in SEARCHERS.items()
            if (grid is None or s.grid == grid) and (branches is None or s.branches == branches)
            and (objectives is None or s.objectives == objectives)]


def planned_trials(algorithm: str, params: tuple[Param, ...], num_samples: int, points: list[dict] = ()) -> int:
    """How many trials a sweep runs: with a grid to enumerate, the given points and each cell
    `num_samples` times less the cells they take (grid_points); otherwise `num_samples` (the
    given points replace its first samples)."""
    rule = SEARCHERS[algorithm].grid
    enumerates = rule != "refused" and not (algorithm == "random" and space.has_conditionals(params))
    if not enumerates or not grid_params(params, grid_every=rule == "every"):
        return num_samples
    request = Request(params=params, fixed={}, metric="", mode="min", seed=0, points=list(points),
                      max_concurrent=1, num_samples=num_samples)
    return len(grid_points(request, grid_every=rule == "every"))
