"""Load and validate a sweep spec (YAML) into typed objects, reporting every problem at once.

Each problem names the file, the key path, what is wrong and the fix, in the manner of Optuna's
error messages::

    search_spaces/x.yaml: params.learning_rate: `low > 0` must hold for loguniform, but got low=0.0.

Validation starts neither Ray nor a trial; it imports the workload module for its `Config`.
"""

from __future__ import annotations

import copy
import dataclasses
import re
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from raysweep import phases, space
from raysweep.checks import did_you_mean, is_int, is_number
from raysweep.datasets import shards
from raysweep.phases import IOSearch, LRFind
from raysweep.space import Param
from raysweep.training import config as training_config, losses
from raysweep.workloads import WORKLOADS

SEARCHERS = ("random", "grid", "optuna", "hyperopt")
TPE_SEARCHERS = ("optuna", "hyperopt")
SCHEDULERS = ("fifo", "asha")
EXECUTORS = ("auto", "in_trial", "torch_trainer")
DATA_FORMATS = ("auto",) + shards.FORMATS

TOP_KEYS = ("name", "workload", "data", "metric", "mode", "fixed", "params", "search",
            "scheduler", "resources", "storage_path", "lr_find", "io_search")
SECTION_KEYS = {
    "data": ("path", "format", "materialize", "read_parallelism"),
    "search": ("algorithm", "num_samples", "seed", "points_to_evaluate", "warm_start"),
    "scheduler": ("type", "max_t", "grace_period", "reduction_factor"),
    "resources": ("workers_per_trial", "cpus_per_worker", "gpus_per_worker",
                  "max_concurrent_trials", "executor"),
    "lr_find": phases.LR_FIND_KEYS,
    "io_search": phases.IO_SEARCH_KEYS,
}
@dataclass(frozen=True)
class Data:
    path: str
    format: str = "auto"         # auto: whatever meta.json records
    materialize: bool = True     # read the shards once per sweep into the object store
    read_parallelism: int | None = None   # Ray Data read blocks (override_num_blocks); None: Ray's choice


@dataclass(frozen=True)
class WarmStart:
    """Start from the best trials of an earlier experiment: they are evaluated first."""

    experiment: str
    top: int = 3


@dataclass(frozen=True)
class Search:
    algorithm: str = "random"
    num_samples: int = 8
    seed: int | None = 0
    points_to_evaluate: tuple[dict, ...] = ()   # evaluated first, in this order
    warm_start: WarmStart | None = None


@dataclass(frozen=True)
class Scheduler:
    type: str = "fifo"
    max_t: int | None = None     # epochs; defaults to the trials' `epochs`
    grace_period: int = 1
    reduction_factor: float = 3.0


@dataclass(frozen=True)
class Resources:
    workers_per_trial: int = 1
    cpus_per_worker: float = 1.0
    gpus_per_worker: float = 0.0
    max_concurrent_trials: int | None = None
    executor: str = "auto"       # auto: in_trial for one worker, torch_trainer for several


@dataclass(frozen=True)
class Spec:
    name: str
    workload: str
    data: Data
    metric: str
    mode: str
    fixed: dict[str, Any]
    params: tuple[Param, ...]
    search: Search = Search()
    scheduler: Scheduler = Scheduler()
    resources: Resources = Resources()
    storage_path: str = "results"
    lr_find: LRFind = LRFind()
    io_search: IOSearch | None = None
    source: str = "<spec>"
    raw: dict = field(default_factory=dict, compare=False, repr=False)

    @property
    def executor(self) -> str:
        if self.resources.executor != "auto":
            return self.resources.executor
        # Measured in bench/trial_overhead.py: in-trial is the faster path for one worker.
        return "in_trial" if self.resources.workers_per_trial == 1 else "torch_trainer"

    @property
    def epochs(self) -> int:
        return int(self.fixed.get("epochs", default_config(self.workload).epochs))

    @property
    def asha_max_t(self) -> int:
        return self.scheduler.max_t or self.epochs

    @property
    def scientific(self) -> list[str]:
        return [p.name for p in self.params if p.role == "scientific"]

    @property
    def tuned(self) -> list[str]:
        """Every tuned name, branch sub-parameters included, in spec order."""
        return [p.name for p in space.all_params(self.params)]


class SpecError(ValueError):
    """A spec has problems; `problems` holds one line each, all found in one pass."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


def default_config(workload: str):
    return WORKLOADS[workload].Config()


def workload_choices(workload: str) -> dict[str, tuple]:
    """The values each string hyperparameter of a workload may take.

    The shared training fields first (schedule, precision, the metrics early stopping may
    watch, the registry's losses), then the workload's own `CHOICES`, which may narrow them.
    """
    module = WORKLOADS[workload]
    choices = {**training_config.CHOICES, "early_stopping_metric": tuple(module.METRICS)}
    if issubclass(module.Config, training_config.LossChoice):
        choices["loss"] = tuple(losses.LOSSES)
    return {**choices, **getattr(module, "CHOICES", {})}


# PyYAML follows YAML 1.1, where `1e-4` (no dot) is a string; sweep specs are full of them.
class _Loader(yaml.SafeLoader):
    pass


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
                   |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
                   |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
                   |[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$""", re.X),
    list("-+0123456789."))


def parse_yaml(text: str) -> Any:
    return yaml.load(text, Loader=_Loader)


def apply_overrides(raw: dict, overrides: list[str]) -> list[str]:
    """Apply `key.path=value` overrides in place (values parsed as YAML); returns problems."""
    problems = []
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key:
            problems.append(f"--set {item}: expected KEY=VALUE, e.g. --set search.num_samples=4")
            continue
        parts = key.split(".")
        node = raw
        for i, part in enumerate(parts[:-1]):
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                problems.append(f"--set {item}: {'.'.join(parts[:i + 1])} is not a mapping")
                break
        else:
            node[parts[-1]] = parse_yaml(value)
    return problems


def load(path: str | Path, overrides: list[str] | None = None, *, check_data: bool = True) -> Spec:
    """Read, override and validate a spec file.

    Raises:
        SpecError: listing every problem, each prefixed with the file and key path.
    """
    path = Path(path)
    if not path.is_file():
        raise SpecError([f"{path}: no such spec file. Ready specs are in search_spaces/."])
    try:
        raw = parse_yaml(path.read_text())
    except yaml.YAMLError as exc:
        raise SpecError([f"{path}: not valid YAML: {exc}".replace("\n", " ")])
    if not isinstance(raw, dict):
        raise SpecError([f"{path}: the spec must be a YAML mapping of keys such as name, workload, params"])
    return validate(raw, source=str(path), overrides=overrides or [], check_data=check_data)


def validate(raw: dict, *, source: str = "<spec>", overrides: list[str] = (),
             check_data: bool = True) -> Spec:
    raw = copy.deepcopy(raw)
    problems = [f"{source}: {p}" for p in apply_overrides(raw, list(overrides))]
    v = _Validator(source)
    spec = v.spec(raw, check_data=check_data)
    problems += v.problems
    if problems:
        raise SpecError(problems)
    return dataclasses.replace(spec, raw=raw)


def check_type(value, hint) -> bool:
    """Does a YAML value fit a Config field's type hint (int, float, bool, str, tuple[int, ...])?"""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        return any(check_type(value, h) for h in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if origin in (tuple, list):
        args = typing.get_args(hint)
        return isinstance(value, (list, tuple)) and all(check_type(x, args[0]) for x in value)
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return is_int(value)
    if hint is float:
        return is_number(value)
    if hint is str:
        return isinstance(value, str)
    return True


def type_name(hint) -> str:
    return getattr(hint, "__name__", None) if typing.get_origin(hint) is None else str(hint)


class _Validator:
    """Walks the raw mapping once, collecting problems instead of stopping at the first."""

    def __init__(self, source: str):
        self.source = source
        self.problems: list[str] = []
        self.meta: dict | None = None   # the dataset's meta.json, once data.path checks out

    def bad(self, key: str, message: str) -> None:
        self.problems.append(f"{self.source}: {key}: {message}")

    def known_keys(self, mapping: dict, known: tuple, prefix: str) -> None:
        for key in mapping:
            if key not in known:
                where = f"{prefix}.{key}" if prefix else str(key)
                self.bad(where, f"unknown key.{did_you_mean(key, known)} Known keys: {', '.join(known)}.")

    def section(self, raw: dict, name: str) -> dict:
        value = raw.get(name) or {}
        if not isinstance(value, dict):
            self.bad(name, f"must be a mapping, got {type(value).__name__}")
            return {}
        self.known_keys(value, SECTION_KEYS.get(name, tuple(value)), name)
        return value

    def spec(self, raw: dict, *, check_data: bool) -> Spec | None:
        self.known_keys(raw, TOP_KEYS, "")
        name = raw.get("name")
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_.-]+", name or ""):
            self.bad("name", f"must be a non-empty name of letters, digits, '_', '.', '-', got {name!r}")
        workload = raw.get("workload")
        if workload not in WORKLOADS:
            self.bad("workload", f"unknown workload {workload!r}.{did_you_mean(workload, WORKLOADS)}"
                     f" Known: {', '.join(WORKLOADS)}.")
            workload = None
        hints = typing.get_type_hints(WORKLOADS[workload].Config) if workload else {}
        choices = workload_choices(workload) if workload else {}
        fixed = self.fixed(raw.get("fixed") or {}, hints, choices)
        params = self.params(raw.get("params") or {}, hints, fixed, choices)
        search = self.search(self.section(raw, "search"), params)
        data = self.data(self.section(raw, "data"), workload, check_data)
        metric, mode = self.objective(raw, workload)
        epochs = fixed.get("epochs", default_config(workload).epochs if workload else None)
        scheduler = self.scheduler(self.section(raw, "scheduler"), epochs, params)
        resources = self.resources(self.section(raw, "resources"))
        storage = raw.get("storage_path", "results")
        if not isinstance(storage, str) or not storage:
            self.bad("storage_path", f"must be a directory path, got {storage!r}")
        self.workload_problems(workload, raw, fixed, metric)
        lr_find = phases.parse_lr_find(self, self.section(raw, "lr_find"), params)
        io_search = phases.parse_io_search(self, raw.get("io_search"), hints, workload, check_data)
        if self.problems:
            return None
        return Spec(name=name, workload=workload, data=data, metric=metric, mode=mode,
                    fixed=fixed, params=tuple(params), search=search, scheduler=scheduler,
                    resources=resources, storage_path=storage, lr_find=lr_find,
                    io_search=io_search, source=self.source)

    def workload_problems(self, workload: str | None, raw: dict, fixed: dict, metric) -> None:
        """The dataset must be the workload's, and fit what the spec asks (a workload's `spec_problems`)."""
        if not workload or self.meta is None:
            return
        made_for = self.meta.get("workload")
        if made_for and made_for != workload:
            self.bad("data.path", f"{raw['data']['path']} holds {made_for} data, but the spec's workload is "
                     f"{workload}; point data.path at {workload} data ({WORKLOADS[workload].DATA_COMMAND.format(path='DIR')})")
            return
        check = getattr(WORKLOADS[workload], "spec_problems", None)
        if check:
            params = raw.get("params") if isinstance(raw.get("params"), dict) else {}
            for key, message in check(self.meta, fixed, params, metric):
                self.bad(key, message)

    def fixed(self, fixed, hints: dict, choices: dict) -> dict:
        if not isinstance(fixed, dict):
            self.bad("fixed", "must be a mapping of hyperparameter name to value")
            return {}
        for key, value in fixed.items():
            if hints and key not in hints:
                self.bad(f"fixed.{key}", f"not a hyperparameter of this workload."
                         f"{did_you_mean(key, hints)} Known: {', '.join(hints)}.")
            elif hints and not check_type(value, hints[key]):
                self.bad(f"fixed.{key}", f"expected {type_name(hints[key])}, got {value!r}")
            elif key in choices and value not in choices[key]:
                self.bad(f"fixed.{key}", f"unknown value {value!r}.{did_you_mean(value, choices[key])} "
                         f"Known: {', '.join(map(str, choices[key]))}.")
        return dict(fixed)

    def params(self, params, hints: dict, fixed: dict, choices: dict) -> list[Param]:
        def check_value(name, value):
            if name in hints and not check_type(value, hints[name]):
                return f"a valid {type_name(hints[name])} for {name}"
            if name in choices and value not in choices[name]:
                return f"one of {name}'s values: {', '.join(map(str, choices[name]))}"
            return None

        return space.parse_params(params, hints=hints, fixed=fixed, bad=self.bad,
                                  check_value=check_value)

    def search(self, s: dict, params: list[Param]) -> Search:
        algorithm = s.get("algorithm", "random")
        if algorithm not in SEARCHERS:
            self.bad("search.algorithm", f"unknown searcher {algorithm!r}.{did_you_mean(algorithm, SEARCHERS)}"
                     f" Known: {', '.join(SEARCHERS)}.")
        for p in params:
            if algorithm in TPE_SEARCHERS and p.type == "grid":
                self.bad(f"params.{p.name}.type", f"grid values cannot be used with search.algorithm "
                         f"{algorithm!r} (a TPE searcher samples every value); use type: choice")
            if algorithm == "grid" and p.type not in ("grid", "choice"):
                self.bad(f"params.{p.name}.type", f"search.algorithm 'grid' enumerates values, but "
                         f"{p.type} is a range; use type: grid with values: [...], or search.algorithm: random")
            if p.when and algorithm == "grid":
                self.bad(f"params.{p.name}.when", "a grid cannot enumerate conditional branches; "
                         "use search.algorithm: random, optuna or hyperopt")
        if (algorithm == "random" and space.has_conditionals(params)
                and any(p.type == "grid" for p in params)):
            self.bad("params", "random search with conditional branches (when:) samples every "
                     "parameter; make the type: grid parameters type: choice")
        # A grid enumerates its values once; num_samples then counts repeats of the grid.
        num_samples = s.get("num_samples", 1 if algorithm == "grid" else Search.num_samples)
        if not is_int(num_samples) or num_samples < 1:
            self.bad("search.num_samples", f"must be an integer >= 1, got {num_samples!r}")
        seed = s.get("seed", Search.seed)
        if seed is not None and not is_int(seed):
            self.bad("search.seed", f"must be an integer or null, got {seed!r}")
        points = s.get("points_to_evaluate") or []
        if not isinstance(points, list):
            self.bad("search.points_to_evaluate", "must be a list of mappings, "
                     "e.g. [{learning_rate: 1.0e-3, cross_layers: 2}]")
            points = []
        for i, point in enumerate(points):
            space.check_point(point, params, f"search.points_to_evaluate[{i}]", self.bad)
        return Search(algorithm=algorithm, num_samples=num_samples, seed=seed,
                      points_to_evaluate=tuple(points), warm_start=self.warm_start(s.get("warm_start")))

    def warm_start(self, w) -> WarmStart | None:
        if w is None:
            return None
        if not isinstance(w, dict):
            self.bad("search.warm_start", "must be a mapping: {experiment: results/<dir>, top: 3}")
            return None
        self.known_keys(w, ("experiment", "top"), "search.warm_start")
        experiment, top = w.get("experiment"), w.get("top", WarmStart.top)
        if not isinstance(experiment, str) or not experiment:
            self.bad("search.warm_start.experiment", "required: an earlier experiment directory")
        elif not (Path(experiment) / "raysweep_spec.yaml").is_file():
            self.bad("search.warm_start.experiment", f"{experiment} is not a raysweep experiment "
                     "directory (no raysweep_spec.yaml); give one that `raysweep run` wrote")
        if not is_int(top) or top < 1:
            self.bad("search.warm_start.top", f"must be an integer >= 1, got {top!r}")
        return WarmStart(experiment=experiment, top=top)

    def data(self, d: dict, workload: str | None, check_data: bool) -> Data | None:
        path = d.get("path")
        if not isinstance(path, str) or not path:
            self.bad("data.path", "required: the directory of a raysweep dataset (with meta.json)")
            return None
        fmt = d.get("format", "auto")
        if fmt not in DATA_FORMATS:
            self.bad("data.format", f"unknown format {fmt!r}. Known: {', '.join(DATA_FORMATS)}.")
        materialize = d.get("materialize", True)
        if not isinstance(materialize, bool):
            self.bad("data.materialize", f"must be true or false, got {materialize!r}")
        parallelism = d.get("read_parallelism")
        if parallelism is not None and (not is_int(parallelism) or parallelism < 1):
            self.bad("data.read_parallelism", f"must be an integer >= 1 or null, got {parallelism!r}")
        if check_data and workload:
            hint = WORKLOADS[workload].DATA_COMMAND.format(path=path)
            try:
                meta = shards.read_meta(path, make_hint=hint)
                shards.check_readable(path, meta)
                self.meta = meta
                if fmt != "auto" and meta.get("format") != fmt:
                    self.bad("data.format", f"{path} holds {meta.get('format')} shards, not {fmt}; "
                             f"set data.format: auto or {meta.get('format')}")
            except shards.DataError as exc:
                self.bad("data.path", str(exc))
        return Data(path=path, format=fmt, materialize=materialize, read_parallelism=parallelism)

    def objective(self, raw: dict, workload: str | None) -> tuple[str, str]:
        metric, mode = raw.get("metric"), raw.get("mode")
        metrics = WORKLOADS[workload].METRICS if workload else {}
        if not isinstance(metric, str):
            self.bad("metric", f"required: the reported metric to optimise, one of {', '.join(metrics)}")
        elif metrics and metric not in metrics:
            self.bad("metric", f"{workload} does not report {metric!r}.{did_you_mean(metric, metrics)}"
                     f" Known: {', '.join(metrics)}.")
        if mode not in ("min", "max"):
            self.bad("mode", f"must be 'min' or 'max', got {mode!r}")
        elif metric in metrics and metrics[metric] != mode:
            self.bad("mode", f"{metric} is better when {'lower' if metrics[metric] == 'min' else 'higher'}; "
                     f"set mode: {metrics[metric]}")
        return metric, mode

    def scheduler(self, s: dict, epochs, params: list[Param]) -> Scheduler:
        kind = s.get("type", "fifo")
        if kind not in SCHEDULERS:
            self.bad("scheduler.type", f"unknown scheduler {kind!r}.{did_you_mean(kind, SCHEDULERS)}"
                     f" Known: {', '.join(SCHEDULERS)}.")
        max_t, grace = s.get("max_t"), s.get("grace_period", 1)
        factor = s.get("reduction_factor", 3)
        if kind == "asha":
            if max_t is not None and (not is_int(max_t) or max_t < 1):
                self.bad("scheduler.max_t", f"must be an integer number of epochs >= 1, got {max_t!r}")
            elif max_t is not None and is_int(epochs) and max_t > epochs:
                self.bad("scheduler.max_t", f"{max_t} exceeds the {epochs} epochs each trial runs; "
                         f"set max_t <= {epochs} or raise fixed.epochs")
            if not is_int(grace) or grace < 1:
                self.bad("scheduler.grace_period", f"must be an integer >= 1, got {grace!r}")
            elif is_int(max_t or epochs) and grace > (max_t or epochs):
                self.bad("scheduler.grace_period", f"{grace} exceeds max_t={max_t or epochs}; "
                         "ASHA could never stop a trial early. Lower grace_period.")
            if not is_number(factor) or factor <= 1:
                self.bad("scheduler.reduction_factor", f"must be a number > 1, got {factor!r}")
            if any(p.name == "epochs" for p in params):
                self.bad("params.epochs", "ASHA allots the epochs; tuning them too confounds the "
                         "comparison. Set fixed.epochs and scheduler.max_t instead.")
        return Scheduler(type=kind, max_t=max_t, grace_period=grace, reduction_factor=factor)

    def resources(self, r: dict) -> Resources:
        workers = r.get("workers_per_trial", 1)
        cpus = r.get("cpus_per_worker", 1)
        gpus = r.get("gpus_per_worker", 0)
        concurrent = r.get("max_concurrent_trials")
        executor = r.get("executor", "auto")
        if not is_int(workers) or workers < 1:
            self.bad("resources.workers_per_trial", f"must be an integer >= 1, got {workers!r}")
        if not is_number(cpus) or cpus <= 0:
            self.bad("resources.cpus_per_worker", f"must be a number > 0, got {cpus!r}")
        if not is_number(gpus) or gpus < 0 or (gpus > 1 and gpus != int(gpus)):
            self.bad("resources.gpus_per_worker", f"must be a fraction in [0, 1] or a whole number, "
                     f"got {gpus!r}")
        if concurrent is not None and (not is_int(concurrent) or concurrent < 1):
            self.bad("resources.max_concurrent_trials", f"must be an integer >= 1 or null, got {concurrent!r}")
        if executor not in EXECUTORS:
            self.bad("resources.executor", f"unknown executor {executor!r}.{did_you_mean(executor, EXECUTORS)}"
                     f" Known: {', '.join(EXECUTORS)}.")
        elif executor == "in_trial" and is_int(workers) and workers > 1:
            self.bad("resources.executor", f"in_trial runs one worker, but workers_per_trial={workers}; "
                     "use executor: torch_trainer (or auto)")
        return Resources(workers_per_trial=workers, cpus_per_worker=cpus, gpus_per_worker=gpus,
                         max_concurrent_trials=concurrent, executor=executor)



    def number(self, section: dict, prefix: str, key: str, default, *, low: float, integer: bool = False,
               strict: bool = False, optional: bool = False):
        """A numeric setting >= low (> low when strict), or None where optional."""
        value = section.get(key, default)
        if optional and value is None:
            return None
        ok = (is_int if integer else is_number)(value) and (value > low if strict else value >= low)
        if not ok:
            kind = "an integer" if integer else "a number"
            self.bad(f"{prefix}.{key}", f"must be {kind} {'>' if strict else '>='} {low:g}"
                     f"{' or null' if optional else ''}, got {value!r}")
        return value


def write_copy(raw: dict, out: str | Path, header: list[str]) -> Path:
    """Write `raw` as a spec file under comment lines, and read it back to prove it validates.

    What lr-find and io-search write for the user to run next must never be a spec that fails.
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(f"# {line}\n" for line in header)
                   + yaml.safe_dump(raw, sort_keys=False, default_flow_style=None))
    load(out, check_data=False)
    return out


def workload_config(spec_workload: str, values: dict):
    """Build the workload's Config from trial values, coercing YAML lists to tuples."""
    config_cls = WORKLOADS[spec_workload].Config
    hints = typing.get_type_hints(config_cls)
    kwargs = {}
    for key, value in values.items():
        if key not in hints:
            continue
        if typing.get_origin(hints[key]) is tuple:
            value = tuple(value)
        elif hints[key] is float and is_int(value):
            value = float(value)
        elif hints[key] is int and isinstance(value, float) and value.is_integer():
            value = int(value)   # a table column holding ints and NaN (a branch's parameter) is float
        kwargs[key] = value
    return config_cls(**kwargs)
