"""Read, override and validate a spec, reporting every problem at once.

`load(path, overrides)` is what every command calls; `validate(raw)` checks a mapping. Each
section is checked by a plain function that adds to one `Problems` (sections.py for the run
settings, phase_sections.py for lr_find and io_search, this module for what depends on the
workload). Validation starts no Ray; it reads the dataset's meta.json and opens one shard.
"""

from __future__ import annotations

import copy
import dataclasses
import re
from pathlib import Path

import yaml

from raysweep.checks import did_you_mean, is_int
from raysweep.datasets import location
from raysweep.datasets.shards import META_FILE
from raysweep.search import objectives, space
from raysweep.search.objectives import Constraint, Objective
from raysweep.search.space import Param
from raysweep.spec import data_checks, phase_sections, sections
from raysweep.spec.data_checks import readable_meta
from raysweep.spec.parsing import apply_overrides, read_mapping
from raysweep.spec.problems import Problems, SpecError, check_type, type_name
from raysweep.spec.schema import DATA_FORMATS, SECTION_KEYS, TOP_KEYS, Data, Spec
from raysweep.trainables import PHASES, Kind, kind_of
from raysweep.training import latency, optimizers
from raysweep.workloads import (
    WORKLOADS,
    check_reference,
    choices,
    field_types,
    load_workload,
    references,
)


def load(path: str | Path, overrides: list[str] | None = None, *, check_data: bool = True) -> Spec:
    """Read, override and validate a spec file.

    Raises:
        SpecError: listing every problem, each prefixed with the file and key path.
    """
    path = Path(path)
    if not path.is_file():
        raise SpecError([f"{path}: no such spec file. Ready specs are in search_spaces/."])
    try:
        raw = read_mapping(path)
    except ValueError as exc:
        raise SpecError([str(exc)]) from None
    except OSError as exc:
        raise SpecError([f"{path}: cannot be read ({type(exc).__name__}: {exc.strerror or exc})"]) from None
    return validate(raw, source=str(path), overrides=overrides or [], check_data=check_data)


def validate(raw: dict, *, source: str = "<spec>", overrides: list[str] = (),
             check_data: bool = True) -> Spec:
    """A raw spec mapping (plus `--set` overrides) as a typed `Spec`, or a SpecError with every problem."""
    raw = copy.deepcopy(raw)
    set_by, override_problems = apply_overrides(raw, list(overrides))
    given = copy.deepcopy(raw)   # before as_run lowers anything: what new overrides apply to (raysweep.api)
    problems = Problems(source, set_by=set_by)
    spec = _spec(problems, raw, check_data=check_data)
    if override_problems or problems.lines:
        raise SpecError(override_problems + problems.lines)
    return dataclasses.replace(spec, raw=raw, given=given, warnings=tuple(problems.notes), undefined_metrics=problems.undefined)


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


def _spec(problems: Problems, raw: dict, *, check_data: bool) -> Spec | None:
    problems.known_keys(raw, TOP_KEYS, "")
    name = raw.get("name")
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_.-]+", name or ""):
        problems.bad("name", f"must be a non-empty name of letters, digits, '_', '.', '-', got {name!r}")
    workload = check_workload(problems, raw.get("workload"))
    hints = field_types(load_workload(workload)) if workload else {}
    values = choices(load_workload(workload)) if workload else {}
    fixed = check_fixed(problems, raw.get("fixed") or {}, hints, values)
    params = check_params(problems, raw.get("params") or {}, hints, fixed, values)
    search = sections.search(problems, section(problems, raw, "search"), params)
    data, meta = check_data_section(problems, section(problems, raw, "data"), workload, check_data)
    goals = objective(problems, raw, workload, fixed)
    metric, mode = (goals[0].metric, goals[0].mode) if goals else (None, None)
    required = constraints(problems, raw, workload, fixed)
    sections.objectives_fit(problems, goals, search.algorithm)
    sections.sampler_fit(problems, search, goals, required)
    latency_fit(problems, fixed, goals, required)
    fixed = best_epoch_by_first_objective(fixed, params, hints, goals, workload)
    epochs, epochs_key = check_epochs(problems, fixed, workload)
    scheduler = sections.scheduler(problems, section(problems, raw, "scheduler"), epochs, params, search.algorithm,
                                   epochs_key=epochs_key)
    as_run(raw, scheduler)
    resources = sections.resources(problems, section(problems, raw, "resources"))
    failure = sections.failure(problems, section(problems, raw, "failure"))
    checkpoints = sections.checkpoints(problems, section(problems, raw, "checkpoints"))
    tracking = sections.tracking(problems, section(problems, raw, "tracking"), raw.get("storage_path", "results"),
                                 installed=check_data)
    storage = raw.get("storage_path", "results")
    if not isinstance(storage, str) or not storage:
        problems.bad("storage_path", f"must be a directory path, got {storage!r}")
    dataset_fit(problems, workload, meta, raw, fixed, metric)
    beta_fixed(problems, fixed, params)
    optimizer_settings(problems, fixed, params)
    lr_find = phase_sections.lr_find(problems, section(problems, raw, "lr_find"), params)
    default_batch = getattr(load_workload(workload).Config(), "batch_size", None) if workload else None
    if workload:
        kind_fit(problems, raw, resources, kind_of(load_workload(workload)))
    if meta is not None and default_batch is not None:
        data_checks.enough_rows(problems, meta, fixed, params, default_batch)
        too_few = data_checks.lr_find_problem(meta, fixed, params, tuple(lr_find.over), lr_find.subset_rows,
                                              default_batch) if "lr_find" in raw else None
        if too_few:
            problems.bad("lr_find.subset_rows", too_few)
    io_search = phase_sections.io_search(problems, raw.get("io_search"), hints, workload, check_data)
    cost = prices(problems, raw.get("cost", {}))
    if problems.lines:
        return None
    return Spec(name=name, workload=workload, data=data, metric=metric, mode=mode,
                fixed=fixed, params=tuple(params), search=search, scheduler=scheduler,
                resources=resources, failure=failure, checkpoints=checkpoints, tracking=tracking,
                storage_path=storage, lr_find=lr_find, io_search=io_search, source=problems.source,
                objectives=goals, constraints=required, cost=cost)


def prices(problems: Problems, given) -> dict[str, float]:
    """`cost: {NODE_TYPE: USD_PER_HOUR}`: what each node type costs, for `raysweep plan`."""
    if not isinstance(given, dict):
        problems.bad("cost", f"must map node types to USD per hour, e.g. {{cpu_worker: 0.38}}, got {given!r}")
        return {}
    for name, price in given.items():
        if isinstance(price, bool) or not isinstance(price, (int, float)) or not price >= 0:
            problems.bad(f"cost.{name}", f"must be a price in USD per hour (a number >= 0), got {price!r}")
    return {str(k): float(v) for k, v in given.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def check_epochs(problems: Problems, fixed: dict, workload: str | None) -> tuple[int | None, str]:
    """The epochs each trial runs (fixed.epochs, else the workload's default), and where they come from."""
    if "epochs" not in fixed:
        return (load_workload(workload).Config().epochs if workload else None), "the workload's default epochs"
    epochs = fixed["epochs"]
    if is_int(epochs) and epochs < 1:   # its type is check_fixed's
        problems.bad("fixed.epochs", f"must be an integer >= 1 (the epochs each trial runs), got {epochs}")
    return epochs, "fixed.epochs"


def as_run(raw: dict, scheduler) -> None:
    """The scheduler's max_t and grace period as lowered to the epochs, in the mapping an
    experiment keeps (its SNAPSHOT_FILE), so the spec saved is the one that ran."""
    given = raw.get("scheduler")
    if isinstance(given, dict):
        for key in ("max_t", "grace_period"):
            if key in given and is_int(given[key]):
                given[key] = getattr(scheduler, key)


def optimizer_settings(problems: Problems, fixed: dict, params) -> None:
    """What torch would refuse mid-trial, over every value the search may give (training/optimizers.py)."""
    tuned = {p.name: p for p in space.all_params(params)}

    def values(name: str, default) -> set:
        if name in tuned and tuned[name].is_choice:
            return set(tuned[name].values)
        return {fixed.get(name, default)}

    momentum = tuned.get("momentum")
    low = (min(momentum.values) if momentum.is_choice else momentum.low) if momentum is not None \
        else fixed.get("momentum", 0.0)
    for key, message in optimizers.problems(values("optimizer", "adam"), values("nesterov", False),
                                            low if isinstance(low, (int, float)) else None):
        problems.bad(f"{'params' if key in tuned else 'fixed'}.{key}", message)


def beta_fixed(problems: Problems, fixed: dict, params) -> None:
    """`fbeta_beta` defines val_fbeta: fixed and > 0, so every trial is scored on the same metric."""
    if any(p.name == "fbeta_beta" for p in space.all_params(params)):
        problems.bad("params.fbeta_beta", "the beta defines val_fbeta; tuned, trials would be scored on different "
                     "metrics. Set it in fixed (e.g. fixed.fbeta_beta: 0.5)")
    beta = fixed.get("fbeta_beta", 1.0)
    if isinstance(beta, (int, float)) and not isinstance(beta, bool) and beta <= 0:
        problems.bad("fixed.fbeta_beta", f"must be > 0 (below 1 weighs precision higher, above 1 recall), got {beta}")


def kind_fit(problems: Problems, raw: dict, resources, kind: Kind) -> None:
    """What the workload's kind cannot do: a phase that steps raysweep's own loop, an executor
    it does not run under, GPUs it would leave idle."""
    for phase in PHASES:
        if phase in raw and phase not in kind.phases:
            problems.bad(phase, f"{phase} times and steps raysweep's own PyTorch loop; the workload trains with "
                         f"{kind.label}. Remove the section.")
    if resources is not None and "torch_trainer" not in kind.executors and \
            (resources.workers_per_trial != 1 or resources.executor == "torch_trainer"):
        problems.bad("resources", f"{kind.label} fit in the trial process (executor: in_trial, workers_per_trial: "
                     "1); give each trial more CPUs with resources.cpus_per_worker instead")
    if resources is not None and resources.gpus_per_worker and not kind.gpus:
        problems.bad("resources.gpus_per_worker", f"{kind.label} fit on CPUs; a GPU held by their trials would "
                     "sit idle. Set it to 0 and give the trials CPUs (resources.cpus_per_worker)")


def check_workload(problems: Problems, reference) -> str | None:
    """`workload:` as a reference that loads and keeps the contract (a file made absolute
    against the spec's folder), or None with the problems reported."""
    if not isinstance(reference, str) or not reference:
        problems.bad("workload", f"required: a workload ({', '.join(WORKLOADS)}), a module path "
                     "(my_project.models.brake) or a file (./brake.py)")
        return None
    base = Path(problems.source).parent if Path(problems.source).is_file() else Path.cwd()
    reference = references.absolute(reference, base)
    _, found = check_reference(reference)
    for line in found:
        problems.bad("workload", line)
    return None if found else reference


def section(problems: Problems, raw: dict, name: str) -> dict:
    return problems.section(raw, name, SECTION_KEYS.get(name))


def check_fixed(problems: Problems, fixed, hints: dict, values: dict) -> dict:
    """`fixed:`: every key a Config field, every value of its type (and among its choices)."""
    if not isinstance(fixed, dict):
        problems.bad("fixed", "must be a mapping of hyperparameter name to value")
        return {}
    for key, value in fixed.items():
        if hints and key not in hints:
            problems.bad(f"fixed.{key}", f"not a hyperparameter of this workload."
                         f"{did_you_mean(key, hints)} Known: {', '.join(hints)}.")
        elif hints and not check_type(value, hints[key]):
            problems.bad(f"fixed.{key}", f"expected {type_name(hints[key])}, got {value!r}")
        elif key in values and value not in values[key]:
            problems.bad(f"fixed.{key}", f"unknown value {value!r}.{did_you_mean(value, values[key])} "
                         f"Known: {', '.join(map(str, values[key]))}.")
    return dict(fixed)


def check_params(problems: Problems, params, hints: dict, fixed: dict, values: dict) -> list[Param]:
    """`params:` parsed into the search space, each value checked against its Config field."""
    def check_value(name, value):
        if name in hints and not check_type(value, hints[name]):
            return f"a valid {type_name(hints[name])} for {name}"
        if name in values and value not in values[name]:
            return f"one of {name}'s values: {', '.join(map(str, values[name]))}"
        return None

    return space.parse_params(params, hints=hints, fixed=fixed, bad=problems.bad, check_value=check_value)


def objective(problems: Problems, raw: dict, workload: str | None,
              fixed: dict | None = None) -> tuple[Objective, ...]:
    """`metric` (one name, or a list: several objectives) must be what the workload reports
    (latency_ms and parameters too where `fixed.measure_latency` is on), and `mode` (one, or a
    list as long) each one's direction."""
    metric, mode = raw.get("metric"), raw.get("mode")
    metrics = reported_metrics(workload, fixed or {})
    several = isinstance(metric, list)
    names = metric if several else [metric]
    modes = mode if isinstance(mode, list) else [mode]
    if several and not metric:
        problems.bad("metric", "an empty list: name one metric, or several to search a Pareto front")
        return ()
    if several != isinstance(mode, list) or len(names) != len(modes):
        problems.bad("mode", f"one mode per metric: metric {metric!r} takes mode "
                     + (f"[{', '.join(metrics.get(n, 'min') if isinstance(n, str) else 'min' for n in names)}]"
                        if several else "min or max") + f", got {mode!r}")
        return ()
    found = []
    for i, (name, direction) in enumerate(zip(names, modes)):
        key, mode_key = (f"metric[{i}]", f"mode[{i}]") if several else ("metric", "mode")
        if not isinstance(name, str):
            problems.bad(key, f"required: the reported metric to optimise, one of {', '.join(metrics)}")
            continue
        if metrics and name not in metrics:
            problems.bad(key, f"{references.label(workload)} does not report {name!r}.{did_you_mean(name, metrics)}"
                         f" Known: {', '.join(metrics)}.")
        if name in names[:i]:
            problems.bad(key, f"{name} is an objective already; name each metric once")
        if direction not in ("min", "max"):
            problems.bad(mode_key, f"must be 'min' or 'max', got {direction!r}")
        elif name in metrics and metrics[name] != direction:
            problems.bad(mode_key, f"{name} is better when {'lower' if metrics[name] == 'min' else 'higher'}; "
                         f"set {'its mode' if several else 'mode'}: {metrics[name]}")
        found.append(Objective(name, direction))
    return tuple(found)


def reported_metrics(workload: str | None, fixed: dict) -> dict[str, str]:
    """The metrics a trial of this workload reports, each with its direction."""
    metrics = dict(load_workload(workload).METRICS) if workload else {}
    if fixed.get("measure_latency"):
        metrics.update(latency.METRICS)
    return metrics


def best_epoch_by_first_objective(fixed: dict, params, hints: dict, goals: tuple, workload: str | None) -> dict:
    """The weights a trial keeps as its best (best.pt, what export deploys) are those of the epoch
    where `early_stopping_metric` was best; the champion, the Pareto point and the constraints are
    read where the first objective was. Where the spec leaves early_stopping_metric alone, it is
    the first objective (a metric the workload reports), so the two are one epoch."""
    if (not goals or "early_stopping_metric" not in hints or "early_stopping_metric" in fixed
            or any(p.name == "early_stopping_metric" for p in params)
            or goals[0].metric not in load_workload(workload).METRICS
            or goals[0].metric == getattr(load_workload(workload).Config(), "early_stopping_metric", None)):
        return fixed
    return {**fixed, "early_stopping_metric": goals[0].metric}


def latency_fit(problems: Problems, fixed: dict, goals: tuple, required: tuple) -> None:
    """Objectives and constraints are read at the epoch where the first objective was best (and
    Tune's schedulers read the first every epoch): a latency measured only after the last epoch
    is missing there."""
    for key in ("latency_batch_size", "latency_batches"):
        if key in fixed and is_int(fixed[key]) and fixed[key] < 1:
            problems.bad(f"fixed.{key}", f"must be at least 1, got {fixed[key]}")
    used = [m for m in [g.metric for g in goals] + [c.metric for c in required] if m in latency.METRICS]
    if used and fixed.get("latency_every") == "last":
        problems.bad("fixed.latency_every", f"last measures {', '.join(dict.fromkeys(used))} after the last epoch only, "
                     "but objectives and constraints are read at the epoch where the first objective was best; "
                     "use latency_every: epoch")


def constraints(problems: Problems, raw: dict, workload: str | None, fixed: dict) -> tuple[Constraint, ...]:
    """`constraints: ["latency_ms <= 5", "val_auc >= 0.8"]`, each on a metric the trials report."""
    given = raw.get("constraints")
    if given is None:
        return ()
    if not isinstance(given, list):
        problems.bad("constraints", f"must be a list of 'METRIC OP NUMBER' strings, e.g. ['latency_ms <= 5'], "
                     f"got {given!r}")
        return ()
    metrics = reported_metrics(workload, fixed)
    found = []
    for i, text in enumerate(given):
        try:
            constraint = objectives.parse_constraint(text)
        except ValueError as exc:
            problems.bad(f"constraints[{i}]", str(exc))
            continue
        if metrics and constraint.metric not in metrics:
            problems.bad(f"constraints[{i}]", f"{references.label(workload)} does not report {constraint.metric!r}."
                         f"{did_you_mean(constraint.metric, metrics)} Known: {', '.join(metrics)}.")
        found.append(constraint)
    return tuple(found)


def check_data_section(problems: Problems, d: dict, workload: str | None,
                       check_data: bool) -> tuple[Data | None, dict | None]:
    """`data:`, and (with `check_data`) the dataset's meta.json and a readable shard."""
    path = d.get("path")
    if not isinstance(path, str) or not path:
        problems.bad("data.path", "required: the directory of a raysweep dataset (with meta.json)")
        return None, None
    fmt = d.get("format", "auto")
    if fmt not in DATA_FORMATS:
        problems.bad("data.format", f"unknown format {fmt!r}. Known: {', '.join(DATA_FORMATS)}.")
    materialize = d.get("materialize", "auto")
    if not isinstance(materialize, bool) and materialize != "auto":
        problems.bad("data.materialize", f"must be auto, true or false, got {materialize!r}")
    parallelism = d.get("read_parallelism")
    if parallelism is not None and (not is_int(parallelism) or parallelism < 1):
        problems.bad("data.read_parallelism", f"must be an integer >= 1 or null, got {parallelism!r}")
    if workload and kind_of(load_workload(workload)).reads_its_own_data and location.exists(path) \
            and not location.exists(location.join(path, META_FILE)):
        # a loop of its own may read a folder raysweep cannot (session.data_path)
        return Data(path=path, format=fmt, materialize=materialize, read_parallelism=parallelism, read=False), None
    meta = readable_meta(problems, "data.path", path, workload) if check_data and workload else None
    if meta is not None and fmt != "auto" and meta.get("format") != fmt:
        problems.bad("data.format", f"{path} holds {meta.get('format')} shards, not {fmt}; "
                     f"set data.format: auto or {meta.get('format')}")
    return Data(path=path, format=fmt, materialize=materialize, read_parallelism=parallelism), meta


def dataset_fit(problems: Problems, workload: str | None, meta: dict | None, raw: dict, fixed: dict,
                metric) -> None:
    """The dataset must be the workload's, and fit what the spec asks (a workload's `spec_problems`)."""
    if not workload or meta is None:
        return
    made_for = meta.get("workload")
    module = load_workload(workload)
    # A built-in workload's data records its name; a user's, its NAME or else its data command's.
    expected = workload if workload in WORKLOADS else getattr(module, "NAME", None) or module.DATA.name
    shown = references.shown_reference(workload)
    if made_for and expected and made_for not in (expected, getattr(module, "TRAINS_ON", None)):
        problems.bad("data.path", f"{raw['data']['path']} holds {made_for} data, but the spec's workload is "
                     f"{shown}; point data.path at its data ({references.data_example(workload, 'DIR')})")
        return
    columns = set(meta.get("columns", {}).values())
    inputs = module.model_inputs(meta) if callable(getattr(module, "model_inputs", None)) else []
    missing = [c for c in dict.fromkeys([meta.get("columns", {}).get("labels", "labels"), *inputs]) if c not in columns]
    if missing:
        problems.bad("data.path", f"{raw['data']['path']} has no column {', '.join(map(repr, missing))} "
                     f"(meta.json columns: {', '.join(sorted(columns)) or 'none'}); {shown} trains on "
                     "`labels` and the columns its model_inputs names")
        return
    check = getattr(load_workload(workload), "spec_problems", None)
    if check:
        params = raw.get("params") if isinstance(raw.get("params"), dict) else {}
        for key, message in check(meta, fixed, params, metric):
            problems.bad(key, message)
