"""The run settings of a spec: `search:` (against its searcher's rules), `scheduler:`, `resources:`.

A scheduler's and a sampler's options are read by one function, `plugin_options`, against the
chosen entry's `Options` dataclass (raysweep.search.options): nothing here knows their keys.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import types
import typing

from raysweep.checks import did_you_mean, is_int, is_number, unknown_key
from raysweep.datasets import location
from raysweep.search import SEARCHERS, samplers, searchers, space
from raysweep.search.objectives import Constraint, Objective
from raysweep.search.options import option_keys
from raysweep.search.samplers import SAMPLERS
from raysweep.search.schedulers import SCHEDULERS, Trials
from raysweep.search.space import Param
from raysweep.spec.problems import Problems, check_type
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
    name, options = sampler(problems, s.get("sampler"), algorithm, params)
    return Search(algorithm=algorithm, num_samples=num_samples, seed=seed,
                  points_to_evaluate=tuple(points), warm_start=warm_start(problems, s.get("warm_start")),
                  sampler=name, sampler_options=options)


def sampler(problems: Problems, given, algorithm: str, params: list[Param]) -> tuple[str | None, object]:
    """`search.sampler`: one of raysweep.search.SAMPLERS by name (`sampler: nsga2`), or by name with
    its options (`sampler: {name: nsga2, population_size: 20}`), for a searcher that takes one, able
    to sample the tuned parameters (sampler_space). The name and its options as validated; None
    for both where the spec names none (Optuna's TPE with its defaults)."""
    if given is None:
        return None, None
    takers = [n for n, found in SEARCHERS.items() if found.samplers]
    if algorithm in SEARCHERS and algorithm not in takers:
        problems.bad("search.sampler", f"search.algorithm {algorithm!r} has no sampler to choose; remove "
                     f"search.sampler, or set search.algorithm: {_either(takers)}", because_of=("search.algorithm",))
        return None, None
    name, key, given = (given.get("name"), "search.sampler.name", given) if isinstance(given, dict) \
        else (given, "search.sampler", {})
    if name is None and key != "search.sampler":
        problems.bad(key, f"required: the sampler, one of {', '.join(SAMPLERS)} "
                     f"(e.g. sampler: {{name: nsga2, population_size: 20}})")
        return None, None
    if not isinstance(name, str) or name not in SAMPLERS:
        problems.bad(key, f"unknown sampler {name!r}.{did_you_mean(name, SAMPLERS)} Known: {', '.join(SAMPLERS)}.")
        return None, None
    missing = [package for package in SAMPLERS[name].packages if importlib.util.find_spec(package) is None]
    if missing:
        problems.bad("search.sampler", f"the {name} sampler needs {', '.join(missing)}, which "
                     f"{'is' if len(missing) == 1 else 'are'} not installed; pip install {' '.join(missing)}, "
                     "or choose another sampler")
    sampler_space(problems, name, params)
    return name, plugin_options(problems, "search.sampler", "sampler", name, SAMPLERS,
                                {k: v for k, v in given.items() if k != "name"}, head=("name",))


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
    """The chosen searcher and sampler against what is optimised: several objectives need a
    sampler that takes them; constraints reach only the searchers and samplers that steer by
    them (a note for the others: they still mark each trial feasible or not)."""
    searcher = SEARCHERS.get(search.algorithm)
    if constraints and searcher is not None and not searcher.constraints:
        steering = [n for n, found in SEARCHERS.items() if found.constraints]
        problems.warn("constraints", f"search.algorithm {search.algorithm} samples without them; rank, report and "
                      f"export still respect them. To steer toward feasible trials use search.algorithm: "
                      f"{_either(steering)}", because_of=("search.algorithm",))
    if searcher is None or not searcher.samplers or search.sampler not in SAMPLERS:
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
    """`scheduler:`: a known type, only the options that type reads (plugin_options against
    `SCHEDULERS[type].Options`), each in range, a max_t or grace period beyond the `epochs` each
    trial runs (`epochs_key` names where they come from) lowered to them with a warning (its
    check); BOHB's scheduler and searcher together; no tuned `epochs` when it stops early."""
    kind_name = s.get("type", "fifo")
    kind = SCHEDULERS.get(kind_name)
    given = {key: value for key, value in s.items() if key != "type"}
    if kind is None:
        problems.bad("scheduler.type", f"unknown scheduler {kind_name!r}.{did_you_mean(kind_name, SCHEDULERS)}"
                     f" Known: {', '.join(SCHEDULERS)}.")
        problems.known_keys(given, _every_key(SCHEDULERS), "scheduler")
        return Scheduler(type=kind_name, unread=given)
    # fifo ignores the others' keys: `--set scheduler.type=fifo` turns early stopping off
    options = plugin_options(problems, "scheduler", "scheduler", kind_name, SCHEDULERS, given, head=("type",),
                             context=Trials(epochs, epochs_key), others_ignored=not kind.stops_early)
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
    return Scheduler(type=kind_name, options=options,
                     unread={key: value for key, value in given.items() if key not in kind.keys})


def plugin_options(problems: Problems, where: str, noun: str, name: str, registry: dict, given: dict, *,
                   head: tuple[str, ...] = (), context=None, others_ignored: bool = False):
    """`given`, a section's keys for the plug-in `registry[name]` (a scheduler, a sampler), as that
    entry's `Options` (raysweep.search.options), or its defaults where a value is wrong.

    A key another entry reads is refused naming the entries that do (or, `others_ignored`,
    left alone), any other unknown key with did-you-mean among every entry's keys and `head`
    (the section's own, such as `type`); each value must fit its field's annotation and range.
    Then the entry's own `check(options, context)`: a finding that lowers a value is a warning
    and the options take the value, any other is a problem. `where` prefixes every key.
    """
    entry = registry[name]
    reads, hints = option_keys(entry.Options), typing.get_type_hints(entry.Options)
    metadata = {f.name: f.metadata for f in dataclasses.fields(entry.Options)}
    values = {}
    for key, value in given.items():
        if key in reads:
            wrong = option_problem(value, hints[key], metadata[key])
            if wrong:
                problems.bad(f"{where}.{key}", wrong)
            else:
                values[key] = value
            continue
        takers = [n for n, other in registry.items() if key in option_keys(other.Options)]
        if not takers:
            problems.bad(f"{where}.{key}", unknown_key(key, (*head, *_every_key(registry))))
        elif not others_ignored:
            problems.bad(f"{where}.{key}", f"the {name} {noun} does not use it "
                         f"({'it reads ' + ', '.join(reads) if reads else 'it reads no options'}); "
                         f"remove it or choose a {noun} that does ({', '.join(takers)})")
    options = entry.Options(**values)
    for found in (entry.check(options, context) if getattr(entry, "check", None) else []):
        if found.lowered_to is None:
            problems.bad(f"{where}.{found.key}", found.message, because_of=found.because_of)
        else:
            problems.warn(f"{where}.{found.key}", found.message, because_of=found.because_of)
            options = dataclasses.replace(options, **{found.key: found.lowered_to})
    return options


def option_problem(value, hint, metadata) -> str | None:
    """What is wrong with an option's value against its type hint and its range
    (raysweep.search.options.option), as `must be <what>, got <value>`; None if nothing."""
    args = typing.get_args(hint)
    optional = typing.get_origin(hint) in (typing.Union, types.UnionType) and type(None) in args
    base = next(a for a in args if a is not type(None)) if optional else hint
    if value is None and optional:
        return None
    low, high, strict = metadata.get("low"), metadata.get("high"), metadata.get("strict", False)
    if typing.get_origin(base) is typing.Literal:
        fits = value in typing.get_args(base)
    else:
        fits = check_type(value, base) and (low is None or (value > low if strict else value >= low)) \
            and (high is None or value <= high)
    if fits:
        return None
    if low is not None and high is not None:
        bounds = f" in {'(' if strict else '['}{low:g}, {high:g}]"
    elif low is not None:
        bounds = f" {'>' if strict else '>='} {low:g}"
    else:
        bounds = f" <= {high:g}" if high is not None else ""
    if metadata.get("what"):   # it names the value whole, null included
        return f"must be {metadata['what']}{bounds}, got {value!r}"
    return f"must be {described(base)}{bounds}{' or null' if optional else ''}, got {value!r}"


def described(hint) -> str:
    """How a message names a value of this type."""
    if typing.get_origin(hint) is typing.Literal:
        return "one of " + ", ".join(map(str, typing.get_args(hint)))
    return {int: "an integer", float: "a number", bool: "true or false", str: "a string"}.get(hint, str(hint))


def _every_key(registry: dict) -> tuple[str, ...]:
    """Every option key of a registry's entries, in registry order."""
    return tuple(dict.fromkeys(key for entry in registry.values() for key in option_keys(entry.Options)))


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
