"""Spec -> `tune.Tuner`: search space, searcher, scheduler, resources, storage; run and resume.

The experiment directory (`storage_path/<name>-<timestamp>`) holds Tune's own state plus
`raysweep_spec.yaml`, the validated spec with `--set` overrides applied and paths made absolute,
which is all `raysweep resume` needs to rebuild the same trainable.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from raysweep import resources, searchers, space, spec as spec_mod
from raysweep.checks import is_missing
from raysweep.datasets import shards

SPEC_SNAPSHOT = "raysweep_spec.yaml"
PROVENANCE_FILE = "provenance.json"
# Train V2's controller polls its workers every 2 s by default and report()/shutdown wait on
# that poll; 0.2 s cuts the per-trial overhead of the TorchTrainer path (notes/ray.md §1.2).
RAY_ENV = {"RAY_TRAIN_HEALTH_CHECK_INTERVAL_S": "0.2"}
# Per-epoch checkpoints force a state snapshot each time; on small trials Tune then warns about
# every snapshot. The snapshot is cheap here (a few ms), so the warning is noise.
DRIVER_ENV = {"TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S": "0",
              # Tune's newer console output prints a configuration box and paths even at
              # verbose=0; raysweep prints its own lines (progress.py) and tables instead.
              "RAY_AIR_NEW_OUTPUT": "0"}

log = logging.getLogger("raysweep")


def start_ray(address: str | None = None) -> None:
    """Connect to `address` (or RAY_ADDRESS), else start a local Ray with the driver resource.

    The dashboard is started (bound to localhost) because Train V2 frees the placement groups of
    stopped trials through the State API, which needs it (notes/ray.md §1.3).
    """
    import ray

    if ray.is_initialized():
        return
    for key, value in {**RAY_ENV, **DRIVER_ENV}.items():
        os.environ.setdefault(key, value)
    address = address or os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(address=address, runtime_env={"env_vars": RAY_ENV}, log_to_driver=False)
    else:
        ray.init(num_cpus=os.cpu_count(), resources={resources.DRIVER_RESOURCE: resources.LOCAL_DRIVER_SLOTS},
                 include_dashboard=True, dashboard_host="127.0.0.1", log_to_driver=False)


def scheduler(spec: spec_mod.Spec):
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

    if spec.scheduler.type == "asha":
        return ASHAScheduler(time_attr="epoch", max_t=spec.asha_max_t,
                             grace_period=spec.scheduler.grace_period,
                             reduction_factor=spec.scheduler.reduction_factor)
    return FIFOScheduler()


@dataclass
class Prepared:
    """What run and resume both need: the trainable with its resources and the allocation."""

    trainable: object
    allocation: resources.Allocation


def open_datasets(spec: spec_mod.Spec, splits: tuple[str, ...] = shards.SPLITS) -> tuple[dict, dict]:
    """The dataset's meta and its splits as Ray Datasets, materialised unless the spec streams."""
    from raysweep import trial
    from raysweep.datasets import ray_data

    meta = shards.read_meta(spec.data.path)  # shards were checked by spec validation
    trial.configure_ray_data()
    datasets = {split: ray_data.open_split(spec.data.path, split, meta,
                                           read_parallelism=spec.data.read_parallelism)
                for split in splits}
    if spec.data.materialize:
        datasets = {k: ds.materialize() for k, ds in datasets.items()}
    return meta, datasets


def allocate(spec: spec_mod.Spec, executor: str | None = None) -> resources.Allocation:
    import ray

    cluster = ray.cluster_resources()
    return resources.allocate(
        spec.resources, executor or spec.executor, cluster_cpus=cluster.get("CPU", 0),
        cluster_gpus=cluster.get("GPU", 0),
        has_driver_slots=cluster.get(resources.DRIVER_RESOURCE, 0) >= 1,
        streaming=not spec.data.materialize)


def trial_plan(spec: spec_mod.Spec, meta: dict, experiment_dir: Path):
    from raysweep import trial

    return trial.TrialPlan(
        workload=spec.workload, meta=meta,
        workers=spec.resources.workers_per_trial, cpus_per_worker=spec.resources.cpus_per_worker,
        gpus_per_worker=spec.resources.gpus_per_worker,
        storage_path=str(experiment_dir / "train_runs"), params=spec.params)


def prepare(spec: spec_mod.Spec, experiment_dir: Path) -> Prepared:
    """Open (and materialise) the data, size resources, wrap the trainable."""
    from ray import tune

    from raysweep import trial

    meta, datasets = open_datasets(spec)
    allocation = allocate(spec)
    fn = tune.with_parameters(trial.EXECUTORS[spec.executor], plan=trial_plan(spec, meta, experiment_dir),
                              datasets=datasets)
    return Prepared(tune.with_resources(fn, allocation.trial), allocation)


def _tuner(spec: spec_mod.Spec, prepared: Prepared, experiment_dir: Path):
    from ray import tune

    from raysweep.analysis.store import StoreWriter
    from raysweep.analysis.tensorboard import TensorBoardWriter
    from raysweep.progress import ProgressLines
    from raysweep.workloads import WORKLOADS

    grid_size = 1
    for p in spec.params:
        if p.type == "grid" or spec.search.algorithm == "grid":
            grid_size *= len(p.values)
    points = warm_start_points(spec)
    progress = ProgressLines(metric=spec.metric, mode=spec.mode, params=spec.params,
                             total=spec.search.num_samples * grid_size,
                             planned_epochs=spec.epochs)
    param_space, search_alg = searchers.build(spec, max_concurrent=prepared.allocation.max_concurrent,
                                              points=points)
    return tune.Tuner(
        prepared.trainable,
        param_space=param_space,
        tune_config=tune.TuneConfig(
            metric=spec.metric, mode=spec.mode, search_alg=search_alg,
            scheduler=scheduler(spec), num_samples=spec.search.num_samples, reuse_actors=True),
        run_config=tune.RunConfig(
            name=experiment_dir.name, storage_path=str(experiment_dir.parent),
            checkpoint_config=tune.CheckpointConfig(
                num_to_keep=2, checkpoint_score_attribute=spec.metric, checkpoint_score_order=spec.mode),
            failure_config=tune.FailureConfig(max_failures=0),
            callbacks=[progress, StoreWriter(str(experiment_dir)),
                       TensorBoardWriter(str(experiment_dir), spec.params, WORKLOADS[spec.workload].METRICS)],
            verbose=0),
    )


def warm_start_points(spec: spec_mod.Spec) -> list[dict]:
    """The spec's given points, then the best trials of `search.warm_start.experiment`.

    They replace the first samples of `num_samples` (Tune's rule). An earlier trial's values
    outside the current space are dropped with a log line rather than failing the sweep.
    """
    points = [dict(p) for p in spec.search.points_to_evaluate]
    warm = spec.search.warm_start
    if warm is None:
        return points
    from raysweep.analysis import leaderboard

    table = leaderboard.leaderboard(warm.experiment, metric=spec.metric, mode=spec.mode)
    table = table[~table["status"].isin(["errored", "diverged"])].dropna(subset=[f"best_{spec.metric}"])
    for _, row in table.head(warm.top).iterrows():
        point = {name: row[name] for name in spec.tuned if name in row and not is_missing(row[name])}
        problems = []
        space.check_point(point, list(spec.params), "point", lambda key, msg: problems.append(f"{key}: {msg}"))
        if problems:
            log.warning("warm start: skipping trial %s of %s: %s", row["trial"], warm.experiment, "; ".join(problems))
        else:
            points.append(point)
    log.info("warm start: %d points evaluated first (%d from %s)", len(points),
             len(points) - len(spec.search.points_to_evaluate), warm.experiment)
    return points



def snapshot(spec: spec_mod.Spec) -> dict:
    """The spec as run: overrides applied, data and storage paths made absolute."""
    raw = dict(spec.raw)
    raw["data"] = {**raw.get("data", {}), "path": str(Path(spec.data.path).resolve())}
    raw["storage_path"] = str(Path(spec.storage_path).expanduser().resolve())
    if spec.search.warm_start:
        raw["search"] = {**raw["search"], "warm_start": {
            **raw["search"]["warm_start"], "experiment": str(Path(spec.search.warm_start.experiment).resolve())}}
    return raw


def new_experiment_dir(spec: spec_mod.Spec, kind: str = "") -> Path:
    """`storage_path/<name>[-kind]-<timestamp>/` with the spec snapshot written into it."""
    storage = Path(spec.storage_path).expanduser().resolve()
    stem = f"{spec.name}-{kind}" if kind else spec.name
    experiment_dir = storage / f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}"
    while experiment_dir.exists():  # two sweeps started within one second
        experiment_dir = experiment_dir.with_name(experiment_dir.name + "x")
    experiment_dir.mkdir(parents=True)
    (experiment_dir / SPEC_SNAPSHOT).write_text(
        f"# {spec.source} as run by raysweep\n" + yaml.safe_dump(snapshot(spec), sort_keys=False))
    return experiment_dir


def versions() -> dict[str, str]:
    import platform

    import numpy
    import pyarrow
    import ray
    import torch

    from raysweep import __version__

    return {"raysweep": __version__, "ray": ray.__version__, "torch": torch.__version__,
            "numpy": numpy.__version__, "pyarrow": pyarrow.__version__, "python": platform.python_version()}


def record_provenance(experiment_dir: Path, event: str) -> None:
    """Append who ran what, when and with which versions to `provenance.json` (report reads it)."""
    import json
    import shlex
    import sys
    from datetime import datetime, timezone

    path = experiment_dir / PROVENANCE_FILE
    runs = json.loads(path.read_text()) if path.is_file() else []
    runs.append({"event": event, "command": shlex.join(["raysweep", *sys.argv[1:]]) if sys.argv[0].endswith("raysweep")
                 else shlex.join(sys.argv), "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                 "versions": versions()})
    path.write_text(json.dumps(runs, indent=2) + "\n")


def run(spec: spec_mod.Spec, *, address: str | None = None) -> Path:
    """Run a validated spec to the end; returns the experiment directory."""
    experiment_dir = new_experiment_dir(spec)
    record_provenance(experiment_dir, "run")
    start_ray(address)
    prepared = prepare(spec, experiment_dir)
    log.info("sweep %s: %d trials at most at once, each with %s; results in %s", spec.name,
             prepared.allocation.max_concurrent, prepared.allocation.trial, experiment_dir)
    _tuner(spec, prepared, experiment_dir).fit()
    return experiment_dir


def load_snapshot(experiment_dir: str | Path) -> spec_mod.Spec:
    experiment_dir = Path(experiment_dir)
    path = experiment_dir / SPEC_SNAPSHOT
    if not path.is_file():
        raise spec_mod.SpecError([f"{experiment_dir}: not a raysweep experiment directory "
                                  f"({SPEC_SNAPSHOT} is missing)"])
    return spec_mod.load(path)


def resume(experiment_dir: str | Path, *, address: str | None = None) -> Path:
    """Finish an interrupted sweep: unfinished trials continue, finished ones are not re-run."""
    from ray import tune

    experiment_dir = Path(experiment_dir).resolve()
    spec = load_snapshot(experiment_dir)
    if not tune.Tuner.can_restore(str(experiment_dir)):
        raise spec_mod.SpecError([f"{experiment_dir}: Tune saved no state here yet, so there is "
                                  "nothing to resume; start it again with `raysweep run`."])
    record_provenance(experiment_dir, "resume")
    start_ray(address)
    prepared = prepare(spec, experiment_dir)
    tuner = tune.Tuner.restore(str(experiment_dir), trainable=prepared.trainable,
                               resume_unfinished=True, resume_errored=False, restart_errored=False)
    tuner.fit()
    return experiment_dir
