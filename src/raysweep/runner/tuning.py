"""Spec -> the pieces of a Tune run: datasets, the trainable with its resources, scheduler, searcher.

The tuning phases (raysweep.phases) assemble these into a `tune.Tuner`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ray import tune

from raysweep import experiment
from raysweep.datasets import ray_data, shards
from raysweep.runner import executors, resources, session
from raysweep.search import SCHEDULERS, SEARCHERS, Request, SearchPlan
from raysweep.search.schedulers import SchedulerRequest
from raysweep.spec import Spec


@dataclass
class Prepared:
    """What run and resume both need: the trainable with its resources and the allocation."""

    trainable: object
    allocation: resources.Allocation


def open_datasets(spec: Spec, splits: tuple[str, ...] = shards.SPLITS) -> tuple[dict, dict]:
    """The dataset's meta and its splits as Ray Datasets, materialised unless the spec streams."""
    meta = shards.read_meta(spec.data.path)  # shards were checked by spec validation
    executors.configure_ray_data()
    datasets = {split: ray_data.open_split(spec.data.path, split, meta,
                                           read_parallelism=spec.data.read_parallelism)
                for split in splits}
    if spec.data.materialize:
        datasets = {k: ds.materialize() for k, ds in datasets.items()}
    return meta, datasets


def trial_plan(spec: Spec, meta: dict, experiment_dir: Path) -> executors.TrialPlan:
    return executors.TrialPlan(
        workload=spec.workload, meta=meta,
        workers=spec.resources.workers_per_trial, cpus_per_worker=spec.resources.cpus_per_worker,
        gpus_per_worker=spec.resources.gpus_per_worker,
        storage_path=experiment.train_runs(experiment_dir), params=spec.params)


def prepare(spec: Spec, experiment_dir: Path) -> Prepared:
    """Open (and materialise) the data, size resources, wrap the trainable."""
    meta, datasets = open_datasets(spec)
    allocation = resources.for_cluster(spec, joined=session.joined_a_cluster())
    fn = tune.with_parameters(executors.EXECUTORS[spec.executor], plan=trial_plan(spec, meta, experiment_dir),
                              datasets=datasets)
    return Prepared(tune.with_resources(fn, allocation.trial), allocation)


def scheduler(spec: Spec):
    s = spec.scheduler
    return SCHEDULERS[s.type].build(SchedulerRequest(
        max_t=spec.scheduler_max_t, grace_period=s.grace_period,
        reduction_factor=s.reduction_factor, brackets=s.brackets, min_samples_required=s.min_samples_required))


def fixed_values(spec: Spec) -> dict:
    """The spec's fixed values; every trial starts from the search seed unless seeds are swept."""
    fixed = dict(spec.fixed)
    if "seed" not in spec.tuned:
        fixed.setdefault("seed", spec.search.seed or 0)
    return fixed


def searcher(spec: Spec, *, max_concurrent: int, points: list[dict]) -> SearchPlan:
    """The Tuner's `param_space`, searcher and `num_samples` for a spec; `points` are evaluated
    first, and a grid comes in a seeded random order under a scheduler that stops trials early."""
    kind = SCHEDULERS[spec.scheduler.type]
    request = Request(params=spec.params, fixed=fixed_values(spec), metric=spec.metric, mode=spec.mode,
                      seed=spec.search.seed, points=points, max_concurrent=max_concurrent,
                      num_samples=spec.search.num_samples, shuffle_grid=kind.stops_early,
                      scheduler_pauses=kind.pauses)
    return SEARCHERS[spec.search.algorithm].build(request)
