"""The Optuna samplers `search.algorithm: optuna` can use (`search.sampler`), one entry each.

An entry says how the sampler is built from the spec's seed and what it does with what a spec
may hold: several objectives, constraints, `choice` parameters and `when:` branches. `validate`
reads the entries before a sweep starts (they import nothing); the builders import Optuna when a
sweep calls them. What each does, read in Optuna 5.1's sources (`optuna/samplers/`):

| sampler       | Optuna class (seeded) | several objectives | steers by constraints | `choice`         | `when:` sub-parameters |
|---------------|-----------------------|--------------------|-----------------------|------------------|------------------------|
| tpe (default) | TPESampler            | yes (MOTPE)        | yes                   | modelled         | modelled per parameter |
| random        | RandomSampler         | yes (reads none)   | no                    | random           | random                 |
| cmaes         | CmaEsSampler          | no (it raises)     | no                    | at random        | refused                |
| gp            | GPSampler             | yes (logEHVI)      | yes                   | modelled         | at random              |
| qmc           | QMCSampler, scrambled | yes (reads none)   | no                    | a QMC coordinate | at random, but the     |
|               |                       |                    |                       |                  | first trial's branch   |
| nsga2         | NSGAIISampler         | yes                | yes                   | crossover        | at random              |

"At random": Optuna hands what the sampler cannot model to its independent sampler, a
RandomSampler with the same seed, and (CMA-ES, GP, QMC) says so in a warning each trial; raysweep
says it once, as a note of `validate`, and turns Optuna's off. CMA-ES, GP and NSGA-II model the parameters every
finished trial has (Optuna's intersection search space), so a branch's sub-parameters, which only
some trials have, are drawn at random; QMC fixes its space at the study's first trial. CMA-ES's
refusal: it fixes its dimension when its model starts, and once trials differ in their
parameters it drops to random sampling for the rest of the sweep.

Constraint values reach the samplers that learn from them on each trial (`optuna_constraints`);
the others sample as if there were none, and the constraints only mark trials feasible or not.

Each entry's `Options` are the keys a spec may set besides the name, in the mapping form
`sampler: {name: nsga2, population_size: 20}` (`sampler: nsga2` takes the defaults):

| sampler | options (Optuna's defaults unless said)                                             |
|---------|-------------------------------------------------------------------------------------|
| tpe     | n_startup_trials (10: random trials before the model)                                |
| random  |                                                                                      |
| cmaes   | n_startup_trials (1), sigma0 (null: Optuna's, from the space's bounds)               |
| gp      | n_startup_trials (10)                                                                |
| qmc     | qmc_type (sobol or halton), scramble (true here: Optuna's false ignores the seed)    |
| nsga2   | population_size (50: trials per generation), crossover_prob (0.9)                    |

Adding a sampler is one entry in `SAMPLERS`, written here: its builder, what it takes, and its
`Options` (search/options.py), which validate checks and the builder receives.
"""

from __future__ import annotations

import threading
import warnings
from dataclasses import dataclass
from typing import Callable, Literal, get_args

from raysweep.search.options import NoOptions, option

DEFAULT = "tpe"

Kind = Literal["modelled", "independent", "refused"]


@dataclass(frozen=True)
class Handling:
    """What a sampler does with one kind of parameter, and `why` (said where it is not modelled).

    "modelled": its own method covers them; "independent": Optuna's independent sampler draws
    them at random (a note); "refused": the sampler cannot work with them (a problem).
    """

    kind: Kind
    why: str = ""

    def __post_init__(self):
        if self.kind not in get_args(Kind):
            raise ValueError(f"Handling.kind must be one of {get_args(Kind)}, got {self.kind!r}")


MODELLED = Handling("modelled")

# The builder's arguments: its options as validated, the spec's seed, and the function that
# reads a trial's constraint values where the installed Optuna has no `Trial.set_constraint`
# (before 5.0; see optuna_constraints).
Build = Callable[[object, int | None, Callable | None], object]


@dataclass(frozen=True)
class Sampler:
    """One `search.sampler`: its builder, its options and what `validate` checks a spec against."""

    build: Build
    objectives: bool          # takes several objectives (the Pareto front)
    constraints: bool         # steers by the trials' constraint values
    choices: Handling         # `choice` parameters
    branches: Handling        # `when:` sub-parameters
    packages: tuple[str, ...] = ()   # what it imports beyond Optuna when it samples
    Options: type = NoOptions        # the keys a spec may set (`sampler: {name: ..., key: value}`)


def _startup_trials(default: int):
    """Trials drawn at random before the sampler's model starts."""
    return option(default, low=0)


@dataclass(frozen=True)
class TPE:
    n_startup_trials: int = _startup_trials(10)


@dataclass(frozen=True)
class CmaEs:
    n_startup_trials: int = _startup_trials(1)
    sigma0: float | None = option(None, low=0, strict=True)   # the first step size; None: Optuna's


@dataclass(frozen=True)
class GP:
    n_startup_trials: int = _startup_trials(10)


@dataclass(frozen=True)
class QMC:
    qmc_type: Literal["sobol", "halton"] = "sobol"
    scramble: bool = True   # the seed chooses the sequence; unscrambled, it starts at the lower corner


@dataclass(frozen=True)
class NSGA2:
    population_size: int = option(50, low=2)   # trials per generation; the first is random
    crossover_prob: float = option(0.9, low=0, high=1)


def _given(constraints_func: Callable | None) -> dict:
    return {} if constraints_func is None else {"constraints_func": constraints_func}


def build_tpe(options: TPE, seed: int | None, constraints_func: Callable | None = None):
    """Optuna's default: one Parzen estimator per parameter, over the trials that have it."""
    import optuna

    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=options.n_startup_trials, **_given(constraints_func))


def build_random(options: NoOptions, seed: int | None, constraints_func: Callable | None = None):
    import optuna

    return optuna.samplers.RandomSampler(seed=seed)


def build_cmaes(options: CmaEs, seed: int | None, constraints_func: Callable | None = None):
    """The seed feeds CMA-ES and the RandomSampler it draws `choice` values and its first trial with."""
    import optuna

    return optuna.samplers.CmaEsSampler(seed=seed, n_startup_trials=options.n_startup_trials, sigma0=options.sigma0,
                                        warn_independent_sampling=False)


def build_gp(options: GP, seed: int | None, constraints_func: Callable | None = None):
    import optuna

    return optuna.samplers.GPSampler(seed=seed, n_startup_trials=options.n_startup_trials,
                                     warn_independent_sampling=False, **_given(constraints_func))


def build_qmc(options: QMC, seed: int | None, constraints_func: Callable | None = None):
    """Scrambled by default, so that the seed chooses the sequence (unscrambled Sobol points ignore
    it and start at the space's lower corner). One driver samples, so there is no seed to share."""
    import optuna

    with warnings.catch_warnings():   # experimental in Optuna; the spec chose it by name
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.QMCSampler(seed=seed, qmc_type=options.qmc_type, scramble=options.scramble,
                                          warn_asynchronous_seeding=False, warn_independent_sampling=False)


def build_nsga2(options: NSGA2, seed: int | None, constraints_func: Callable | None = None):
    import optuna

    sampler = optuna.samplers.NSGAIISampler(seed=seed, population_size=options.population_size,
                                            crossover_prob=options.crossover_prob, **_given(constraints_func))
    if isinstance(getattr(sampler, "_thread_lock", None), LOCK_TYPE):
        sampler._thread_lock = PicklableLock()
    return sampler


LOCK_TYPE = type(threading.Lock())


class PicklableLock:
    """A lock that pickles, as a new unlocked one. Optuna 5's genetic samplers (BaseGASampler:
    NSGA-II) guard their generation cache with a plain threading.Lock (`_thread_lock`, used only
    as `with`), which Ray Tune cannot pickle with the searcher: the Tuner writes tuner.pkl when it
    is made, and the searcher's checkpoints pickle its sampler. The cache it guards is rebuilt
    from the study, so a restored sampler needs the lock, not its state."""

    def __init__(self):
        self._lock = threading.Lock()

    def __enter__(self):
        return self._lock.__enter__()

    def __exit__(self, *exc):
        return self._lock.__exit__(*exc)

    def __getstate__(self) -> dict:
        return {}

    def __setstate__(self, state: dict) -> None:
        self._lock = threading.Lock()


SAMPLERS: dict[str, Sampler] = {
    "tpe": Sampler(build_tpe, objectives=True, constraints=True, choices=MODELLED, branches=MODELLED, Options=TPE),
    "random": Sampler(build_random, objectives=True, constraints=False, choices=MODELLED, branches=MODELLED),
    "cmaes": Sampler(
        build_cmaes, objectives=False, constraints=False, packages=("cmaes",), Options=CmaEs,
        choices=Handling("independent", "CMA-ES models numeric parameters only"),
        branches=Handling("refused", "CMA-ES fixes its set of parameters when its model starts, and once trials "
                                     "differ in theirs it falls back to random sampling for the rest of the sweep")),
    "gp": Sampler(
        build_gp, objectives=True, constraints=True, packages=("torch", "scipy"), choices=MODELLED, Options=GP,
        branches=Handling("independent", "the Gaussian process models the parameters every finished trial has")),
    "qmc": Sampler(
        build_qmc, objectives=True, constraints=False, packages=("scipy",), choices=MODELLED, Options=QMC,
        branches=Handling("independent", "QMC fixes its space at the first trial, so only that trial's branch "
                                         "follows the Sobol sequence")),
    "nsga2": Sampler(
        build_nsga2, objectives=True, constraints=True, choices=MODELLED, Options=NSGA2,
        branches=Handling("independent", "NSGA-II crosses over the parameters every finished trial has")),
}


def taking(*, objectives: bool | None = None, constraints: bool | None = None,
           choices: Kind | None = None, branches: Kind | None = None) -> list[str]:
    """The samplers that match, in registry order (for messages that name the fix)."""
    return [name for name, s in SAMPLERS.items()
            if (objectives is None or s.objectives == objectives)
            and (constraints is None or s.constraints == constraints)
            and (choices is None or s.choices.kind == choices)
            and (branches is None or s.branches.kind == branches)]
