"""`raysweep io-search SPEC`: which data-path settings feed the model fastest?

The Glideator seed's `find_optimal_dataloader_params`. Every combination of the spec's
`io_search.grid` (batch size, prefetch, read parallelism, shuffle buffer, Parquet or WebDataset
shards, kept in the object store or streamed, CPUs per worker) is one Tune trial that opens the
data itself as a sweep's trial would (`tuning.in_trial_split`), trains the spec's fixed
baseline model for `warmup_steps` untimed steps and then `steps` timed ones, and reports
training samples per second. Trials run one at a time,
so no trial's timing includes another's work.

Beside the throughput each trial records where the time went: the share spent waiting for the
next batch (near 1: the input pipeline is the bottleneck; near 0: the model is), the trial
process's CPU utilisation (CPU seconds per second per allotted CPU, the threads that read a
streamed split included), the GPU utilisation where there is a GPU, and how long the
data took to open (and materialise) before the first step.
"""

from __future__ import annotations

import copy
import itertools
import logging
import math
import resource
import time
from pathlib import Path

import pandas as pd
import ray
import torch
from ray import tune
from ray.tune.execution.placement_groups import PlacementGroupFactory

from raysweep import experiment
from raysweep.datasets import location, shards
from raysweep.errors import describe_failure
from raysweep.runner import executors, logs, ray_fixes, tuning
from raysweep.runner.resources import SizingError
from raysweep.runner.session import start_ray
from raysweep.search import space
from raysweep.spec import Spec, SpecError, write_copy
from raysweep.spec.schema import IO_CONFIG_KNOBS
from raysweep.trainables import kind_of
from raysweep.training import loop
from raysweep.workloads import load_workload

RESULTS_FILES = ("io_search.csv", "io_search.parquet")
OBJECTIVE = "samples_per_s"
MEASURES = (OBJECTIVE, "input_wait_frac", "cpu_util", "gpu_util", "prepare_s", "timed_s")

log = logging.getLogger("raysweep")


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _gpu_utilisation() -> float | None:
    if not torch.cuda.is_available():
        return None
    try:
        return torch.cuda.utilization() / 100.0   # needs pynvml; absent -> not recorded
    except Exception:  # noqa: BLE001 - any NVML problem just means no reading
        return None


def io_trial(config: dict, *, plan, default_path: str, steps: int, warmup_steps: int) -> None:
    """Tune function trainable: open the data as configured, time `steps` training steps."""
    cfg = plan.config(config)
    cpus = float(config.get("cpus_per_worker", plan.cpus_per_worker))
    executors.use_cpus(cpus)
    device = executors.trial_device(plan)
    workload = load_workload(plan.workload)
    path = config.get("data_path") or default_path

    started = time.perf_counter()
    ds = tuning.in_trial_split(path, "train", shards.read_meta(path), materialize=config.get("materialize", "auto"),
                               read_parallelism=config.get("read_parallelism"))
    trainee = loop.build(workload, cfg, plan.meta, device=device)
    trainee.model.train()
    train_batches = executors.epoch_data(cfg, ds, None).train
    stream = itertools.chain.from_iterable(train_batches(epoch) for epoch in itertools.count())
    prepare_s = waited = 0.0  # prepare_s: open + materialise + the first step
    rows = 0
    for step in range(warmup_steps + steps):
        if step == warmup_steps:   # the clock starts after the warm-up
            if device.type == "cuda":
                torch.cuda.synchronize()
            t0, cpu0, waited, rows = time.perf_counter(), _cpu_seconds(), 0.0, 0
        before = time.perf_counter()
        batch = next(stream)
        waited += time.perf_counter() - before
        loop.train_step(workload, cfg, trainee, batch, device=device)
        rows += loop.rows_in(batch)
        if step == 0:
            prepare_s = time.perf_counter() - started
    if device.type == "cuda":
        torch.cuda.synchronize()
    elapsed = time.perf_counter() - t0
    tune.report({OBJECTIVE: rows / elapsed, "timed_steps": steps, "timed_rows": rows, "timed_s": elapsed,
                 "input_wait_frac": waited / elapsed, "cpu_util": (_cpu_seconds() - cpu0) / elapsed / cpus,
                 "gpu_util": _gpu_utilisation(), "prepare_s": prepare_s})


def _trial_resources(spec: Spec, cluster_cpus: float):
    """Per-trial resources from the trial's own `cpus_per_worker`, checked against the cluster.
    A streamed setting reads in the trial's own process (reading.StreamedSplit): no CPU aside."""
    gpus = spec.resources.gpus_per_worker
    grid = dict(spec.io_search.grid)
    for cpus in grid.get("cpus_per_worker", [spec.resources.cpus_per_worker]):
        if cpus > cluster_cpus:
            raise SizingError(f"io_search.grid.cpus_per_worker: {cpus:g} CPUs do not fit the cluster's "
                              f"{cluster_cpus:g} CPUs; drop that value")

    def per_trial(config: dict) -> PlacementGroupFactory:
        bundle = {"CPU": float(config.get("cpus_per_worker", spec.resources.cpus_per_worker))}
        if gpus:
            bundle["GPU"] = gpus
        return PlacementGroupFactory([bundle])
    return per_trial


def run(spec: Spec, *, address: str | None = None) -> tuple[Path, pd.DataFrame]:
    """Run one timed trial per grid combination; returns the experiment dir and the ranked table."""
    kind = kind_of(load_workload(spec.workload))
    if "io_search" not in kind.phases:
        raise SpecError([f"{spec.source}: workload: io-search times and steps raysweep's own PyTorch loop; the workload "
                         f"trains with {kind.label}. Run the sweep: raysweep run"])
    if spec.io_search is None:
        raise SpecError([f"{spec.source}: io_search: missing. Add the settings to try, e.g.\n"
                         "  io_search: {steps: 200, warmup_steps: 20, grid: {batch_size: [256, 1024], "
                         "prefetch_batches: [1, 4]}}"])
    experiment_dir = experiment.create(spec, "io_search")
    with logs.to_experiment_log(experiment_dir):
        ranked = _timed_trials(spec, experiment_dir, address)
    experiment.push(experiment_dir, [logs.LOG_FILE])
    return experiment_dir, ranked


def _timed_trials(spec: Spec, experiment_dir: Path, address: str | None) -> pd.DataFrame:
    grid = dict(spec.io_search.grid)
    start_ray(address, spec)
    meta = shards.read_meta(spec.data.path)
    per_trial = _trial_resources(spec, ray.cluster_resources().get("CPU", 0))
    fixed = {**tuning.fixed_values(spec), **space.baseline(spec.params, skip=grid)}
    defaults = {"data_path": location.absolute(spec.data.path), "materialize": spec.data.materialize,
                "read_parallelism": spec.data.read_parallelism}
    # Trials run elsewhere, so paths must not depend on the working directory; the table and a
    # written spec show them as the spec gave them.
    given_paths = {location.absolute(p): p for p in grid.get("data_path", [])}
    if given_paths:
        grid["data_path"] = list(given_paths)
    param_space = {**fixed, **{k: v for k, v in defaults.items() if k not in grid},
                   **{k: tune.grid_search(list(v)) for k, v in grid.items()}}
    fn = tune.with_parameters(io_trial, plan=tuning.trial_plan(spec, meta, experiment_dir),
                              default_path=defaults["data_path"], steps=spec.io_search.steps,
                              warmup_steps=spec.io_search.warmup_steps)
    log.info("io-search %s: %d settings, timed one at a time; results in %s", spec.name,
             math.prod(len(v) for v in grid.values()), experiment_dir)
    storage, name = experiment.tune_location(experiment_dir)
    with ray_fixes.installed(ray_fixes.READING_RESULTS):   # the results are read from Tune's analysis
        results = tune.Tuner(
            tune.with_resources(fn, per_trial), param_space=param_space,
            tune_config=tune.TuneConfig(metric=OBJECTIVE, mode="max", max_concurrent_trials=1, reuse_actors=True),
            run_config=tune.RunConfig(name=name, storage_path=storage,
                                      failure_config=tune.FailureConfig(max_failures=0), verbose=0),
        ).fit()
    rows = []
    for result in results:
        row = {k: result.config.get(k) for k in grid}
        if "data_path" in row:
            row["data_path"] = given_paths.get(row["data_path"], row["data_path"])
        metrics = result.metrics or {}
        row.update({m: metrics.get(m) for m in MEASURES})
        row["error"] = describe_failure(str(result.error)) if result.error else ""
        rows.append(row)
    table = rank(pd.DataFrame(rows))
    table.to_csv(experiment_dir / RESULTS_FILES[0], index=False)
    table.astype({c: str for c in grid if table[c].dtype == object}).to_parquet(experiment_dir / RESULTS_FILES[1])
    experiment.push(experiment_dir, list(RESULTS_FILES))
    return table


def rank(table: pd.DataFrame) -> pd.DataFrame:
    """Fastest first; errored settings last."""
    table = table.sort_values(OBJECTIVE, ascending=False, na_position="last", kind="stable")
    table = table.reset_index(drop=True)
    table.insert(0, "rank", range(1, len(table) + 1))
    return table


def best_settings(table: pd.DataFrame) -> dict:
    """The fastest trial's settings, as the grid named them."""
    ok = table[table["error"] == ""].dropna(subset=[OBJECTIVE])
    if ok.empty:
        return {}
    knobs = [c for c in table.columns if c not in ("rank", "error", "timed_steps", "timed_rows") + MEASURES]
    return {k: _plain(ok.iloc[0][k]) for k in knobs}


def _plain(value):
    if hasattr(value, "item"):
        value = value.item()
    return None if isinstance(value, float) and math.isnan(value) else value


def narrowed(spec: Spec, settings: dict) -> dict:
    """The spec's raw mapping with `settings` (the fastest, `best_settings`) in it: loop knobs
    go to `fixed` (and leave `params` if they were tuned), the data path and its read settings
    to `data`, the CPUs to `resources`. What `write_spec` writes and `raysweep playbook` searches on."""
    raw = copy.deepcopy(spec.raw)
    for key, value in settings.items():
        if key in IO_CONFIG_KNOBS:
            raw.setdefault("fixed", {})[key] = value
            (raw.get("params") or {}).pop(key, None)
        elif key == "data_path":
            raw["data"]["path"] = value
        elif key in ("read_parallelism", "materialize"):
            raw["data"][key] = value
        elif key == "cpus_per_worker":
            raw.setdefault("resources", {})[key] = value
    return raw


def write_spec(spec: Spec, settings: dict, out: str | Path) -> Path:
    """A copy of the spec that trains with the fastest settings (`narrowed`), read back through
    `spec.load` to prove it validates."""
    return write_copy(narrowed(spec, settings), out, [
        f"{spec.source} with the fastest I/O settings found by `raysweep io-search`:",
        ", ".join(f"{k}={v}" for k, v in settings.items())])


def format_table(table: pd.DataFrame) -> str:
    shown = table.drop(columns=["timed_steps", "timed_rows"], errors="ignore")
    if not (shown["error"] != "").any():
        shown = shown.drop(columns=["error"])
    if shown["gpu_util"].isna().all():
        shown = shown.drop(columns=["gpu_util"])
    return shown.to_string(index=False, float_format=lambda x: f"{x:,.3g}")
