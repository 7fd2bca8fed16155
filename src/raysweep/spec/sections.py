"""The run settings of a spec: `search:` (against its searcher's rules), `scheduler:`, `resources:`."""

from __future__ import annotations

import importlib.util

from raysweep.checks import did_you_mean, is_int, is_number
from raysweep.datasets import location
from raysweep.search import SEARCHERS, samplers, searchers, space
from raysweep.search.objectives import Constraint, Objective
from raysweep.search.samplers import SAMPLERS
from raysweep.search.schedulers import SCHEDULERS
from raysweep.search.space import Param
from raysweep.spec.problems import Problems
from raysweep.spec.schema import (
    EXECUTORS,
    SNAPSHOT_FILE,
    Checkpoints,
    Failure,
    Resources,
    Scheduler,
    Search,
    Tracking,
    WarmStart,
)
from raysweep.tracking import TRACKERS


def search(problems: Problems, s: dict, params: list[Param]) -> Search:
    """`search:`: a known algorithm whose rules the tuned parameters keep, seed, given points."""
    algorithm = s.get("algorithm", "random")
    searcher = SEARCHERS.get(algorithm)
    if searcher is None:
        problems.bad("search.algorithm", f"unknown searcher {algorithm!r}.{did_you_mean(algorithm, SEARCHERS)}"
                     f" Known: {', '.join(SEARCHERS)}.")
    else:
        searcher_rules(problems, algorithm, params)
    num_samples = s.get("num_samples", searcher.default_num_samples if searcher else Search.num_samples)
    if not is_int(num_samples) or num_samples < 1:
        problems.bad("search.num_samples", f"must be an integer >= 1, got {num_samples!r}")
    seed = s.get("seed", Search.seed)
    if seed is not None and not is_int(seed):
        problems.bad("search.seed", f"must be an integer or null, got {seed!r}")
    points = s.get("points_to_evaluate") or []
    if not isinstance(points, list):
        problems.bad("search.points_to_evaluate", "must be a list of mappings, "
                     "e.g. [{learning_rate: 1.0e-3, cross_layers: 2}]")
        points = []
    for i, point in enumerate(points):
        space.check_point(point, params, f"search.points_to_evaluate[{i}]", problems.bad)
    return Search(algorithm=algorithm, num_samples=num_samples, seed=seed,
                  points_to_evaluate=tuple(points), warm_start=warm_start(problems, s.get("warm_start")),
                  sampler=sampler(problems, s.get("sampler"), algorithm, params))


def sampler(problems: Problems, name, algorithm: str, params: list[Param]) -> str | None:
    """`search.sampler`: one of raysweep.search.SAMPLERS, for a searcher that takes one, able to
    sample the tuned parameters (sampler_space). None where the spec names none (Optuna's TPE)."""
    if name is None:
        return None
    takers = [n for n, found in SEARCHERS.items() if found.samplers]
    if algorithm in SEARCHERS and algorithm not in takers:
        problems.bad("search.sampler", f"search.algorithm {algorithm!r} has no sampler to choose; remove "
                     f"search.sampler, or set search.algorithm: {_either(takers)}", because_of=("search.algorithm",))
        return None
    if not isinstance(name, str) or name not in SAMPLERS:
        problems.bad("search.sampler", f"unknown sampler {name!r}.{did_you_mean(name, SAMPLERS)}"
                     f" Known: {', '.join(SAMPLERS)}.")
        return None
    missing = [package for package in SAMPLERS[name].packages if importlib.util.find_spec(package) is None]
    if missing:
        problems.bad("search.sampler", f"the {name} sampler needs {', '.join(missing)}, which "
                     f"{'is' if len(missing) == 1 else 'are'} not installed; pip install {' '.join(missing)}, "
                     "or choose another sampler")
    sampler_space(problems, name, params)
    return name


def sampler_space(problems: Problems, name: str, params: list[Param]) -> None:
    """What the sampler does with `choice` parameters and `when:` branches (samplers.Handling):
    nothing to say where it models them, a note where Optuna draws them at random, a problem
    where the sampler cannot work with them."""
    entry = SAMPLERS[name]
    every = space.all_params(params)
    choices = [p.name for p in every if p.is_choice]
    if choices and entry.choices.kind == "independent":
        if len(choices) == len(every):
            problems.bad("search.sampler", f"{name} would tune nothing here: {entry.choices.why}, and every "
                         f"parameter is a choice; use search.sampler: {_either(samplers.taking(choices='modelled'))}")
        else:
            problems.warn("search.sampler", f"{name} draws the choice parameters ({', '.join(choices)}) at random: "
                          f"{entry.choices.why}; for a sampler that models them use "
                          f"{_either(samplers.taking(choices='modelled'))}")
    branching = [p for p in params if p.when]
    if branching and entry.branches.kind == "refused":
        for p in branching:
            problems.bad(f"params.{p.name}.when", f"search.sampler {name} takes no conditional branches: "
                         f"{entry.branches.why}; use search.sampler: {_either(samplers.taking(branches='modelled'))}, "
                         "or tune the branch's parameters on every trial", because_of=("search.sampler",))
    elif branching and entry.branches.kind == "independent":
        subs = [sub.name for p in branching for _, found in p.when for sub in found]
        problems.warn("search.sampler", f"{name} draws the branches' sub-parameters ({', '.join(dict.fromkeys(subs))}) "
                      f"at random: {entry.branches.why}; for a sampler that models them use "
                      f"{_either(samplers.taking(branches='modelled'))}")


def sampler_fit(problems: Problems, search: Search, goals: tuple[Objective, ...],
                constraints: tuple[Constraint, ...]) -> None:
    """The chosen sampler against what is optimised: several objectives need one that takes
    them; constraints reach only the samplers that steer by them (a note for the others)."""
    if search.sampler not in SAMPLERS:
        return
    entry = SAMPLERS[search.sampler]
    if len(goals) > 1 and not entry.objectives:
        problems.bad("search.sampler", f"{search.sampler} optimises one objective, but metric names {len(goals)} "
                     f"({', '.join(g.metric for g in goals)}); use search.sampler: "
                     f"{_either(samplers.taking(objectives=True))}, or name one metric", because_of=("metric",))
    if constraints and not entry.constraints:
        problems.warn("search.sampler", f"{search.sampler} samples without the constraints "
                      f"({', '.join(c.text for c in constraints)}): they only mark its trials feasible or not; "
                      f"for a sampler that steers toward feasible trials use "
                      f"{_either(samplers.taking(constraints=True))}", because_of=("constraints",))


def objectives_fit(problems: Problems, goals: tuple, algorithm: str) -> None:
    """Several objectives need a searcher that handles them (`Searcher.objectives`)."""
    rules = SEARCHERS.get(algorithm)
    if len(goals) > 1 and rules is not None and not rules.objectives:
        problems.bad("metric", f"search.algorithm {algorithm!r} optimises one metric; with several objectives use "
                     f"search.algorithm: {_either(searchers.accepting(objectives=True))}")


def searcher_rules(problems: Problems, algorithm: str, params: list[Param]) -> None:
    """What the searcher accepts (`raysweep.search.SEARCHERS`): grid values and branches."""
    rules = SEARCHERS[algorithm]
    for p in params:
        if rules.grid == "refused" and p.type == "grid":
            problems.bad(f"params.{p.name}.type", f"grid values cannot be used with search.algorithm "
                         f"{algorithm!r} (it samples every value); use type: choice")
        if rules.grid == "every" and p.type not in ("grid", "choice"):
            problems.bad(f"params.{p.name}.type", f"search.algorithm {algorithm!r} enumerates values, but "
                         f"{p.type} is a range; use type: grid with values: [...], or search.algorithm: "
                         f"{_either(searchers.accepting(grid='marked'))}")
        if p.when and not rules.branches:
            problems.bad(f"params.{p.name}.when", f"search.algorithm {algorithm!r} takes no conditional branches; "
                         f"use search.algorithm: {_either(searchers.accepting(branches=True))}")
    if (rules.grid == "marked" and space.has_conditionals(params)
            and any(p.type == "grid" for p in params)):
        problems.bad("params", f"{algorithm} search with conditional branches (when:) samples every "
                     "parameter; make the type: grid parameters type: choice")


def _either(names: list[str]) -> str:
    """'a', 'a or b', 'a, b or c'."""
    return " or ".join([", ".join(names[:-1]), names[-1]] if len(names) > 1 else names)


def warm_start(problems: Problems, w) -> WarmStart | None:
    if w is None:
        return None
    if not isinstance(w, dict):
        problems.bad("search.warm_start", "must be a mapping: {experiment: results/<dir>, top: 3}")
        return None
    problems.known_keys(w, ("experiment", "top"), "search.warm_start")
    experiment, top = w.get("experiment"), w.get("top", WarmStart.top)
    if not isinstance(experiment, str) or not experiment:
        problems.bad("search.warm_start.experiment", "required: an earlier experiment directory")
    elif not location.exists(location.join(experiment, SNAPSHOT_FILE)):
        problems.bad("search.warm_start.experiment", f"{experiment} is not a raysweep experiment "
                     f"directory (no {SNAPSHOT_FILE}); give one that `raysweep run` wrote")
    if not is_int(top) or top < 1:
        problems.bad("search.warm_start.top", f"must be an integer >= 1, got {top!r}")
    return WarmStart(experiment=experiment, top=top)


def scheduler(problems: Problems, s: dict, epochs, params: list[Param], algorithm: str, *,
              epochs_key: str = "fixed.epochs") -> Scheduler:
    """`scheduler:`: a known type, only the keys that type reads (raysweep.search.SCHEDULERS),
    each in range; BOHB's scheduler and searcher together; no tuned `epochs` when it stops early.

    A max_t or grace period beyond the `epochs` each trial runs (`epochs_key` names where they
    come from) is lowered to them, with a warning: a smoke run with `--set fixed.epochs=1`
    should run a shipped spec as it is, not ask for two more overrides.
    """
    kind_name = s.get("type", "fifo")
    kind = SCHEDULERS.get(kind_name)
    if kind is None:
        problems.bad("scheduler.type", f"unknown scheduler {kind_name!r}.{did_you_mean(kind_name, SCHEDULERS)}"
                     f" Known: {', '.join(SCHEDULERS)}.")
        return Scheduler(type=kind_name)
    for key in s:   # fifo ignores them all: `--set scheduler.type=fifo` turns early stopping off
        if key != "type" and key not in kind.keys and kind.stops_early:
            reads = f"it reads {', '.join(kind.keys)}"
            problems.bad(f"scheduler.{key}", f"the {kind_name} scheduler does not use it ({reads}); remove it "
                         f"or choose a scheduler that does ({', '.join(n for n, k in SCHEDULERS.items() if key in k.keys)})")
    max_t, grace = s.get("max_t"), s.get("grace_period", Scheduler.grace_period)
    factor, brackets = s.get("reduction_factor", Scheduler.reduction_factor), s.get("brackets", Scheduler.brackets)
    min_samples = s.get("min_samples_required", Scheduler.min_samples_required)
    bound, bound_key = epochs, epochs_key   # what a grace period may not exceed
    if max_t is not None and (not is_int(max_t) or max_t < 1):
        problems.bad("scheduler.max_t", f"must be an integer number of epochs >= 1, got {max_t!r}")
    elif "max_t" in kind.keys and max_t is not None and is_int(epochs) and 1 <= epochs < max_t:
        problems.warn("scheduler.max_t", f"{max_t} is more than {epochs_key} {epochs}: lowered to {epochs}",
                      because_of=(epochs_key,))
        max_t = epochs
    elif "max_t" in kind.keys and max_t is not None:
        bound, bound_key = max_t, "scheduler.max_t"
    if not is_int(grace) or grace < 1:
        problems.bad("scheduler.grace_period", f"must be an integer >= 1, got {grace!r}")
    elif "grace_period" in kind.keys and is_int(bound) and 1 <= bound < grace:
        problems.warn("scheduler.grace_period", f"{grace} is more than {bound_key} {bound}: lowered to {bound}",
                      because_of=(bound_key,))
        grace = bound
    if not is_number(factor) or factor <= 1:
        problems.bad("scheduler.reduction_factor", f"must be a number > 1, got {factor!r}")
    if not is_int(brackets) or brackets < 1:
        problems.bad("scheduler.brackets", f"must be an integer >= 1, got {brackets!r}")
    if not is_int(min_samples) or min_samples < 1:
        problems.bad("scheduler.min_samples_required", f"must be an integer >= 1, got {min_samples!r}")
    if kind.needs_searcher and algorithm != kind.needs_searcher:
        problems.bad("scheduler.type", f"{kind_name} works only with search.algorithm: {kind.needs_searcher} "
                     f"(its searcher fills the brackets its scheduler runs); got {algorithm!r}")
    for other_name, other in SCHEDULERS.items():
        if other.needs_searcher == algorithm and kind_name != other_name:
            problems.bad("search.algorithm", f"{algorithm} works only with scheduler.type: {other_name}; "
                         f"got {kind_name!r}")
    searcher = SEARCHERS.get(algorithm)
    if kind.pauses and searcher is not None and not searcher.pausing:
        usable = [n for n, found in SEARCHERS.items()
                  if found.pausing and not any(k.needs_searcher == n for k in SCHEDULERS.values())]
        problems.bad("scheduler.type", f"{kind_name} pauses trials at each rung, and {algorithm} would stop "
                     "proposing while they wait, so its brackets would be cut before they filled; use it with "
                     f"search.algorithm {' or '.join(usable)}, or choose asha or median")
    if kind.stops_early and any(p.name == "epochs" for p in params):
        problems.bad("params.epochs", f"the {kind_name} scheduler allots the epochs; tuning them too confounds "
                     "the comparison. Set fixed.epochs and scheduler.max_t instead.")
    return Scheduler(type=kind_name, max_t=max_t, grace_period=grace, reduction_factor=factor,
                     brackets=brackets, min_samples_required=min_samples)


def resources(problems: Problems, r: dict) -> Resources:
    workers = r.get("workers_per_trial", 1)
    cpus = r.get("cpus_per_worker", 1)
    gpus = r.get("gpus_per_worker", 0)
    concurrent = r.get("max_concurrent_trials")
    executor = r.get("executor", "auto")
    if not is_int(workers) or workers < 1:
        problems.bad("resources.workers_per_trial", f"must be an integer >= 1, got {workers!r}")
    if not is_number(cpus) or cpus <= 0:
        problems.bad("resources.cpus_per_worker", f"must be a number > 0, got {cpus!r}")
    if not is_number(gpus) or gpus < 0 or (gpus > 1 and gpus != int(gpus)):
        problems.bad("resources.gpus_per_worker", f"must be a fraction in [0, 1] or a whole number, got {gpus!r}")
    if concurrent is not None and (not is_int(concurrent) or concurrent < 1):
        problems.bad("resources.max_concurrent_trials", f"must be an integer >= 1 or null, got {concurrent!r}")
    if executor not in EXECUTORS:
        problems.bad("resources.executor", f"unknown executor {executor!r}.{did_you_mean(executor, EXECUTORS)}"
                     f" Known: {', '.join(EXECUTORS)}.")
    elif executor == "in_trial" and is_int(workers) and workers > 1:
        problems.bad("resources.executor", f"in_trial runs one worker, but workers_per_trial={workers}; "
                     "use executor: torch_trainer (or auto)")
    return Resources(workers_per_trial=workers, cpus_per_worker=cpus, gpus_per_worker=gpus,
                     max_concurrent_trials=concurrent, executor=executor)


def failure(problems: Problems, f: dict) -> Failure:
    """`failure:`: how often a failed trial (a lost node, a crash) is retried from its checkpoint,
    and how long a trial may go without reporting before it is stopped as stalled."""
    retries = problems.number(f, "failure", "max_retries", Failure.max_retries, low=0, integer=True)
    stall = problems.number(f, "failure", "stall_timeout_s", Failure.stall_timeout_s, low=0, strict=True,
                            optional=True)
    return Failure(max_retries=retries, stall_timeout_s=stall)


def checkpoints(problems: Problems, c: dict) -> Checkpoints:
    """`checkpoints:`: how many of the best ended trials keep their checkpoints (null: all)."""
    keep = problems.number(c, "checkpoints", "keep_top", Checkpoints.keep_top, low=1, integer=True, optional=True)
    return Checkpoints(keep_top=keep)


def tracking(problems: Problems, t: dict, storage_path, *, installed: bool = True) -> Tracking:
    """`tracking: {<tracker>: {settings}, ...}`, any of raysweep.tracking.TRACKERS: each one's
    keys and values, what it refuses (MLflow's local store with results in a bucket), and (with
    `installed`, as `validate` and `run` check) its package installed; a saved spec read back
    for `rank` or `report` on a machine without it loads all the same."""
    found = {}
    for name, settings in t.items():
        tracker = TRACKERS.get(name)
        if tracker is None:
            continue   # problems.section named it already, with the trackers there are
        settings = {} if settings is None else settings
        where = f"tracking.{name}"
        if not isinstance(settings, dict):
            problems.bad(where, f"must be a mapping of {', '.join(tracker.keys)} (e.g. {{}}), got {settings!r}")
            continue
        problems.known_keys(settings, tracker.keys, where)
        for key, value in settings.items():
            if key in tracker.keys and (not isinstance(value, str) or not value):
                problems.bad(f"{where}.{key}", f"must be a non-empty string, got {value!r}")
            elif key in tracker.choices and value not in tracker.choices[key]:
                problems.bad(f"{where}.{key}", f"must be one of {', '.join(tracker.choices[key])}, got {value!r}")
        if installed and importlib.util.find_spec(tracker.package) is None:
            problems.bad(where, f"{tracker.package} is not installed; pip install 'raysweep[{tracker.extra}]'")
        for problem in tracker.check(settings, storage_path if isinstance(storage_path, str) else ""):
            problems.bad(f"{where}.{problem.split(':', 1)[0]}", problem.split(":", 1)[1].strip())
        found[name] = dict(settings)
    return Tracking(trackers=found)
