"""Spec -> `tune.Tuner`: search space, searcher, scheduler, resources, storage; run and resume.

The experiment directory (`storage_path/<name>-<timestamp>`) holds Tune's own state plus
`raysweep_spec.yaml`, the validated spec with `--set` overrides applied and paths made absolute,
which is all `raysweep resume` needs to rebuild the same trainable.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from raysweep import resources, spec as spec_mod
from raysweep.datasets import shards

SPEC_SNAPSHOT = "raysweep_spec.yaml"
# Train V2's controller polls its workers every 2 s by default and report()/shutdown wait on
# that poll; 0.2 s cuts the per-trial overhead of the TorchTrainer path (notes/ray.md §1.2).
RAY_ENV = {"RAY_TRAIN_HEALTH_CHECK_INTERVAL_S": "0.2"}
# Per-epoch checkpoints force a state snapshot each time; on small trials Tune then warns about
# every snapshot. The snapshot is cheap here (a few ms), so the warning is noise.
DRIVER_ENV = {"TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S": "0"}

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


def param_space(spec: spec_mod.Spec) -> tuple[dict, tuple[str, ...]]:
    """Fixed values plus Tune domains for the tuned ones.

    Choices whose values are lists or mappings travel as JSON strings, because Optuna and
    HyperOpt accept only scalar categories; `trial.decode_config` turns them back.
    """
    from ray import tune

    space = dict(spec.fixed)
    json_params = []
    grid = spec.search.algorithm == "grid"
    for p in spec.params:
        if p.type in ("choice", "grid"):
            values = list(p.values)
            if any(isinstance(v, (list, dict)) for v in values):
                values = [json.dumps(v) for v in values]
                json_params.append(p.name)
            space[p.name] = tune.grid_search(values) if p.type == "grid" or grid else tune.choice(values)
        elif p.type == "uniform":
            space[p.name] = tune.uniform(p.low, p.high)
        elif p.type == "loguniform":
            space[p.name] = tune.loguniform(p.low, p.high)
        elif p.type == "randint":
            space[p.name] = tune.randint(p.low, p.high + 1)  # spec bounds are inclusive
    space.setdefault("seed", spec.search.seed or 0)
    return space, tuple(json_params)


def searcher(spec: spec_mod.Spec, max_concurrent: int):
    """The spec's searcher, holding the concurrency limit itself.

    Tune ignores `TuneConfig.max_concurrent_trials` when given a SearchGenerator, so the limit
    goes into BasicVariantGenerator or a ConcurrencyLimiter around the TPE searchers.
    """
    from ray.tune.search import ConcurrencyLimiter
    from ray.tune.search.basic_variant import BasicVariantGenerator

    seed = spec.search.seed
    if spec.search.algorithm == "optuna":
        from ray.tune.search.optuna import OptunaSearch
        return ConcurrencyLimiter(OptunaSearch(seed=seed), max_concurrent=max_concurrent)
    if spec.search.algorithm == "hyperopt":
        from ray.tune.search.hyperopt import HyperOptSearch
        return ConcurrencyLimiter(HyperOptSearch(random_state_seed=seed), max_concurrent=max_concurrent)
    return BasicVariantGenerator(random_state=seed, max_concurrent=max_concurrent)


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
    space: dict


def prepare(spec: spec_mod.Spec, experiment_dir: Path) -> Prepared:
    """Open (and materialise) the data, size resources, wrap the trainable."""
    import ray
    from ray import tune

    from raysweep import trial
    from raysweep.datasets import ray_data

    meta = shards.read_meta(spec.data.path)  # shards were checked by spec validation
    trial.configure_ray_data()
    datasets = {split: ray_data.open_split(spec.data.path, split, meta) for split in shards.SPLITS}
    if spec.data.materialize:
        datasets = {k: ds.materialize() for k, ds in datasets.items()}
    cluster = ray.cluster_resources()
    allocation = resources.allocate(
        spec.resources, spec.executor, cluster_cpus=cluster.get("CPU", 0),
        cluster_gpus=cluster.get("GPU", 0),
        has_driver_slots=cluster.get(resources.DRIVER_RESOURCE, 0) >= 1,
        streaming=not spec.data.materialize)
    space, json_params = param_space(spec)
    plan = trial.TrialPlan(
        workload=spec.workload, meta=meta,
        workers=spec.resources.workers_per_trial, cpus_per_worker=spec.resources.cpus_per_worker,
        gpus_per_worker=spec.resources.gpus_per_worker,
        storage_path=str(experiment_dir / "train_runs"), json_params=json_params)
    fn = tune.with_parameters(trial.EXECUTORS[spec.executor], plan=plan, datasets=datasets)
    return Prepared(tune.with_resources(fn, allocation.trial), allocation, space)


def _tuner(spec: spec_mod.Spec, prepared: Prepared, experiment_dir: Path):
    from ray import tune

    from raysweep.progress import ProgressLines

    grid_size = 1
    for p in spec.params:
        if p.type == "grid" or spec.search.algorithm == "grid":
            grid_size *= len(p.values)
    progress = ProgressLines(metric=spec.metric, mode=spec.mode, tuned=[p.name for p in spec.params],
                             total=spec.search.num_samples * grid_size, planned_epochs=spec.epochs)

    return tune.Tuner(
        prepared.trainable,
        param_space=prepared.space,
        tune_config=tune.TuneConfig(
            metric=spec.metric, mode=spec.mode, search_alg=searcher(spec, prepared.allocation.max_concurrent),
            scheduler=scheduler(spec), num_samples=spec.search.num_samples, reuse_actors=True),
        run_config=tune.RunConfig(
            name=experiment_dir.name, storage_path=str(experiment_dir.parent),
            checkpoint_config=tune.CheckpointConfig(
                num_to_keep=2, checkpoint_score_attribute=spec.metric, checkpoint_score_order=spec.mode),
            failure_config=tune.FailureConfig(max_failures=0),
            callbacks=[progress], verbose=0),
    )


def snapshot(spec: spec_mod.Spec) -> dict:
    """The spec as run: overrides applied, data and storage paths made absolute."""
    raw = dict(spec.raw)
    raw["data"] = {**raw.get("data", {}), "path": str(Path(spec.data.path).resolve())}
    raw["storage_path"] = str(Path(spec.storage_path).expanduser().resolve())
    return raw


def run(spec: spec_mod.Spec, *, address: str | None = None) -> Path:
    """Run a validated spec to the end; returns the experiment directory."""
    storage = Path(spec.storage_path).expanduser().resolve()
    experiment_dir = storage / f"{spec.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    while experiment_dir.exists():  # two sweeps started within one second
        experiment_dir = experiment_dir.with_name(experiment_dir.name + "x")
    experiment_dir.mkdir(parents=True)
    (experiment_dir / SPEC_SNAPSHOT).write_text(
        f"# {spec.source} as run by raysweep\n" + yaml.safe_dump(snapshot(spec), sort_keys=False))
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
    start_ray(address)
    prepared = prepare(spec, experiment_dir)
    tuner = tune.Tuner.restore(str(experiment_dir), trainable=prepared.trainable,
                               resume_unfinished=True, resume_errored=False, restart_errored=False)
    tuner.fit()
    return experiment_dir
