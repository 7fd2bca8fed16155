"""Spec -> the pieces of a Tune run: datasets, the trainable with its resources, scheduler, searcher.

The tuning phases (raysweep.phases) assemble these into a `tune.Tuner`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from ray import tune

from raysweep import experiment
from raysweep.checks import size_text
from raysweep.datasets import location, ray_data, reading, shards
from raysweep.runner import executors, resources, session
from raysweep.search import SCHEDULERS, SEARCHERS, Request, SearchPlan
from raysweep.search.schedulers import Trials
from raysweep.spec import Spec

log = logging.getLogger("raysweep")


@dataclass
class Prepared:
    """What run and resume both need: the trainable with its resources and the allocation."""

    trainable: object
    allocation: resources.Allocation


# A dataset is kept in the object store when it fills at most this share of the smallest node's:
# the rest holds what Tune and Ray Train put there, and room to spare keeps Ray from spilling.
KEEP_SHARE = 0.5


@dataclass
class OpenedData:
    """A spec's dataset as the trials will read it."""

    meta: dict
    datasets: dict      # split -> StoredSplit / StreamedSplit (in_trial) or ray.data.Dataset (TorchTrainer)
    kept: bool          # in the object store; else read from the shards on every epoch
    ray_data_streams: bool   # Ray Data's read tasks stream it (they need a CPU: resources.allocate)


def keeps(materialize: bool | str, nbytes: int, store_bytes: int) -> bool:
    """`data.materialize`: true keeps, false streams, auto keeps what fits comfortably."""
    return materialize if isinstance(materialize, bool) else nbytes <= KEEP_SHARE * store_bytes


def open_datasets(spec: Spec, executor: str, splits: tuple[str, ...] = shards.SPLITS) -> OpenedData:
    """The spec's splits for `executor`'s trials: kept in the object store or streamed.

    In-trial trials iterate the kept blocks, or read the shards ahead in their own process;
    a TorchTrainer gets Ray Datasets its workers split between them.
    """
    path = spec.data.path
    meta = shards.read_meta(path)  # shards were checked by spec validation
    fmt, columns = meta.get("format", "parquet"), reading.columns_of(meta)
    executors.configure_ray_data()
    # sizing reads every shard's footer, and keeping the data reads it all: seconds on a large dataset
    log.info("reading %s (%d shards of %s) ...", path, sum(len(shards.shard_paths(path, split, fmt)) for split in splits),
             ", ".join(splits))
    found = {split: reading.split_shards(path, split, meta) for split in splits}
    nbytes = sum(s.nbytes for split in found.values() for s in split)
    store = ray_data.object_store_bytes()
    kept = keeps(spec.data.materialize, nbytes, store)
    log.info("data: %s in memory, %s: %s", size_text(nbytes),
             "kept in the object store" if kept else "streamed from the shards each epoch",
             _why(spec.data.materialize, kept, store))
    if kept:
        stored = {split: ray_data.store_split(found[split], fmt, columns) for split in splits}
        if executor == "torch_trainer":
            return OpenedData(meta, {k: v.to_ray_dataset() for k, v in stored.items()}, True, False)
        return OpenedData(meta, stored, True, False)
    if executor == "torch_trainer":
        return OpenedData(meta, {split: ray_data.stream(found[split], fmt, columns, spec.data.read_parallelism)
                                 for split in splits}, False, True)
    return OpenedData(meta, {split: _streamed(found[split], fmt, columns, spec.data.read_parallelism)
                             for split in splits}, False, False)


def _streamed(split: list[reading.Shard], fmt: str, columns: list[str],
              read_parallelism: int | None) -> reading.StreamedSplit:
    return reading.StreamedSplit(tuple(split), fmt, tuple(columns), read_parallelism or reading.STREAM_THREADS)


def in_trial_split(path: str, split: str, meta: dict, *, materialize: bool | str,
                   read_parallelism: int | None) -> reading.SplitBlocks:
    """One split for the trial that calls this (io-search's timed trials): kept or streamed by
    the same rule as a sweep's; the blocks it keeps belong to this trial."""
    fmt, columns = meta.get("format", "parquet"), reading.columns_of(meta)
    found = reading.split_shards(path, split, meta)
    if keeps(materialize, sum(s.nbytes for s in found), ray_data.object_store_bytes()):
        return ray_data.store_split(found, fmt, columns)
    return _streamed(found, fmt, columns, read_parallelism)


def _why(materialize: bool | str, kept: bool, store: int) -> str:
    if isinstance(materialize, bool):
        return f"data.materialize is {str(materialize).lower()}"
    share = f"{KEEP_SHARE:.0%} of the object store ({size_text(store)} on the smallest node)"
    return f"{'within' if kept else 'more than'} {share}; data.materialize: auto"


def trial_plan(spec: Spec, meta: dict, experiment_dir: Path) -> executors.TrialPlan:
    return executors.TrialPlan(
        workload=spec.workload, meta=meta,
        workers=spec.resources.workers_per_trial, cpus_per_worker=spec.resources.cpus_per_worker,
        gpus_per_worker=spec.resources.gpus_per_worker,
        storage_path=experiment.train_runs(experiment_dir), params=spec.params,
        data_path=location.absolute(spec.data.path), metric=spec.metric, mode=spec.mode)


def prepare(spec: Spec, experiment_dir: Path) -> Prepared:
    """Open the data (kept or streamed), size resources, wrap the trainable."""
    data = open_datasets(spec, spec.executor) if spec.data.read else OpenedData({}, {}, False, False)
    allocation = resources.for_cluster(spec, joined=session.joined_a_cluster(), streaming=data.ray_data_streams)
    fn = tune.with_parameters(executors.EXECUTORS[spec.executor], plan=trial_plan(spec, data.meta, experiment_dir),
                              datasets=data.datasets)
    return Prepared(tune.with_resources(fn, allocation.trial), allocation)


def scheduler(spec: Spec):
    """The spec's Tune scheduler: its type's builder, given the options validation checked."""
    return SCHEDULERS[spec.scheduler.type].build(spec.scheduler.options, Trials(spec.epochs))


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
                      scheduler_pauses=kind.pauses, objectives=spec.objectives, constraints=spec.constraints,
                      sampler=spec.search.sampler, sampler_options=spec.search.sampler_options)
    return SEARCHERS[spec.search.algorithm].build(request)
