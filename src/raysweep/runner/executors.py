"""What runs inside one Tune trial: the workload's loop, fed by Ray Data, on one of two executors.

- `in_trial`: the loop runs in the Tune trial process itself and reports with `tune.report`.
  One worker, no extra actors: the cheap path (see BENCHMARKS.md), the default for one worker.
- `torch_trainer`: the trial is the driver of a Ray Train `TorchTrainer` (the Ray 2.60 Train V2
  pattern). Each worker consumes its split of the stream, gradients are all-reduced (DDP), and
  `TuneReportCallback` carries rank 0's reports back to Tune.

Both call the same `raysweep.training.loop`, so a config gives the same metrics on either.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import pyarrow as pa
import ray
import ray.data
import ray.train
import torch
from ray import tune

from raysweep import experiment
from raysweep.datasets import batching, reading, shards
from raysweep.search.space import Param
from raysweep.training import checkpoint, loop
from raysweep.training.config import TrainingConfig
from raysweep.workloads import config_from_trial, fits_estimators, load_workload

VAL_BATCH_SIZE = 4096


@dataclass(frozen=True)
class TrialPlan:
    """Everything a trial needs besides its sampled config; pickled once into the trainable."""

    workload: str
    meta: dict
    workers: int
    cpus_per_worker: float
    gpus_per_worker: float
    storage_path: str             # where TorchTrainer runs keep their checkpoints
    params: tuple[Param, ...]     # to decode JSON choices and conditional branches

    def config(self, trial_config: dict) -> TrainingConfig:
        """The workload's typed Config for this trial's sampled values."""
        return config_from_trial(load_workload(self.workload), trial_config, self.params)


def configure_ray_data() -> None:
    """Reproducible block order, quiet logs; per process, since DataContext is not shipped.

    Without `preserve_order`, blocks arrive in the order their read tasks finish, so the same
    seed would shuffle different data in different runs.
    """
    ctx = ray.data.DataContext.get_current()
    ctx.execution_options.preserve_order = True
    ctx.enable_progress_bars = False
    ctx.print_on_execution_start = False
    logging.getLogger("ray.data").setLevel(logging.WARNING)


def use_cpus(cpus: float) -> None:
    """Compute on as many threads as the trial holds CPUs: torch's, and pyarrow's pool, which
    decodes the shards a streamed split reads (both default to every core of the node)."""
    threads = max(1, int(cpus))
    torch.set_num_threads(threads)
    pa.set_cpu_count(threads)


def blocks(ds, prefetch: int):
    """A split's Arrow blocks, from a kept or streamed in-trial split or a Train worker's shard."""
    if isinstance(ds, reading.SplitBlocks):
        return ds.tables(ahead=prefetch)
    return ds.iter_batches(batch_size=None, batch_format="pyarrow", prefetch_batches=prefetch)


def whole_split(ds) -> dict[str, np.ndarray]:
    """A split's rows as numpy columns, all at once: what a model family fits on."""
    table = pa.concat_tables([t for t in blocks(ds, 1) if t.num_rows])
    return {name: shards.column_values(table[name]) for name in table.column_names}


def epoch_data(cfg: TrainingConfig, train_ds, val_ds) -> loop.EpochData:
    """Batches from a stream of Arrow blocks, shuffled per epoch with a seeded generator.

    `train_ds`/`val_ds` are a split kept in the object store or streamed from its shards
    (in-trial: `reading.SplitBlocks`), or a Train worker's DataIterator shard; all give Arrow
    blocks, which `batching` cuts into torch batches (see its docstring).
    """

    def train(epoch: int):
        return batching.torch_batches(blocks(train_ds, cfg.prefetch_batches), batch_size=cfg.batch_size,
                                      shuffle_buffer=cfg.shuffle_buffer, seed=cfg.seed * 1_000_003 + epoch)

    def val():
        return batching.torch_batches(blocks(val_ds, 1), batch_size=VAL_BATCH_SIZE)

    return loop.EpochData(train=train, val=val)


def placement(holds_gpus: bool) -> dict[str, str]:
    """Where this process trains: its Ray node and the GPUs Ray gave it (reported every epoch).

    The results store keeps them per trial, so a sweep shows which node each trial ran on and
    a GPU sweep which device it had. A process that holds no GPU records none, whatever
    CUDA_VISIBLE_DEVICES its node left in the environment.
    """
    return {"node_id": ray.get_runtime_context().get_node_id(),
            "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES", "") if holds_gpus else ""}


def _cpu_despite_gpus(device: torch.device, holds_gpus: bool) -> None:
    """Say so where Ray gave this process a GPU but torch trains on the CPU (a CPU build of
    torch, or a driver too old for it): the trial still runs, slowly."""
    if holds_gpus and device.type != "cuda":
        logging.getLogger("raysweep").warning(
            "this trial holds GPU %s but torch sees no CUDA device (torch %s); training on the CPU",
            os.environ.get("CUDA_VISIBLE_DEVICES", "?"), torch.__version__)


def trial_device(plan: TrialPlan) -> torch.device:
    """CUDA where the trial holds a GPU and torch sees one; else the CPU (a logical GPU, a CPU build)."""
    return torch.device("cuda" if plan.gpus_per_worker > 0 and torch.cuda.is_available() else "cpu")


def train_device() -> torch.device:
    """A Train worker's device: the GPU Ray Train assigned, where torch can use it; else the CPU."""
    import ray.train.torch  # see run_torch_trainer

    return ray.train.torch.get_device() if torch.cuda.is_available() else torch.device("cpu")


def resume_files(saved) -> tuple[dict[str, dict] | None, list[dict]]:
    """The files of the checkpoint Tune or Train hands a restarted trial, and the reports it
    made up to it; (None, []) for a fresh trial."""
    if saved is None:
        return None, []
    with saved.as_directory() as directory:
        return checkpoint.load(directory), checkpoint.reports(directory)


# --- executor 1: the loop inside the Tune trial -------------------------------------------------

def run_in_trial(config: dict, *, plan: TrialPlan, datasets: dict) -> None:
    """Tune function trainable: train here, report each epoch with a Tune checkpoint."""
    cfg = plan.config(config)
    use_cpus(plan.cpus_per_worker)
    workload = load_workload(plan.workload)
    if fits_estimators(workload):
        fit_in_trial(workload, cfg, plan=plan, datasets=datasets)
        return
    device = trial_device(plan)
    resume, history = resume_files(tune.get_checkpoint())
    trainee = loop.build(workload, cfg, plan.meta, device=device, resume=resume)
    _cpu_despite_gpus(device, plan.gpus_per_worker > 0)
    where = placement(plan.gpus_per_worker > 0)

    def report(metrics: dict, files: dict | None) -> None:
        metrics = {**metrics, **where}
        history.append(metrics)
        if files is None:
            tune.report(metrics)
            return
        with tempfile.TemporaryDirectory() as directory:
            checkpoint.save(directory, files, reports=history)
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(directory))

    loop.run_epochs(workload, cfg, trainee, epoch_data(cfg, datasets["train"], datasets["val"]),
                    report, device=device)


def fit_in_trial(workload, cfg, *, plan: TrialPlan, datasets: dict) -> None:
    """A model family's trial (`raysweep.estimators`): the whole splits in memory, a checkpoint
    per report in the family's own format, continued from Tune's checkpoint after a restart."""
    where = placement(False)
    saved = tune.get_checkpoint()
    history: list[dict] = []

    def report(metrics: dict, write) -> None:
        metrics = {**metrics, **where}
        history.append(metrics)
        with tempfile.TemporaryDirectory() as directory:
            write(Path(directory))
            checkpoint.seal(directory, history)
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(directory))

    with saved.as_directory() if saved is not None else contextlib.nullcontext() as resume:
        history.extend(checkpoint.reports(resume) if resume else [])
        workload.fit_trial(cfg, whole_split(datasets["train"]), whole_split(datasets["val"]), report,
                           meta=plan.meta, threads=max(1, int(plan.cpus_per_worker)),
                           resume=Path(resume) if resume else None)


# --- executor 2: a TorchTrainer driven from the Tune trial --------------------------------------

def train_worker(config: dict, *, plan: TrialPlan) -> None:
    """Per-worker loop under Ray Train: DDP model, this worker's split of the stream."""
    import ray.train.torch  # here, not at the top: see run_torch_trainer

    configure_ray_data()
    cfg = plan.config(config)
    use_cpus(plan.cpus_per_worker)
    device = train_device()
    workload = load_workload(plan.workload)
    wrap = partial(ray.train.torch.prepare_model, move_to_device=device) if plan.workers > 1 else (lambda m: m)
    resume, history = resume_files(ray.train.get_checkpoint())
    trainee = loop.build(workload, cfg, plan.meta, device=device, wrap_model=wrap, resume=resume)
    rank = ray.train.get_context().get_world_rank()
    _cpu_despite_gpus(device, plan.gpus_per_worker > 0)
    where = placement(plan.gpus_per_worker > 0)

    def report(metrics: dict, files: dict | None) -> None:
        metrics = {**metrics, **where}
        history.append(metrics)
        with tempfile.TemporaryDirectory() as directory:
            saved = None
            if rank == 0 and files is not None:
                checkpoint.save(directory, files, reports=history)
                saved = ray.train.Checkpoint.from_directory(directory)
            ray.train.report(metrics, checkpoint=saved)

    data = epoch_data(cfg, ray.train.get_dataset_shard("train"), ray.train.get_dataset_shard("val"))
    loop.run_epochs(workload, cfg, trainee, data, report, device=device)


def run_torch_trainer(config: dict, *, plan: TrialPlan, datasets: dict) -> None:
    """Tune function trainable that drives a TorchTrainer; Train checkpoints go to storage.

    The Train run is named after the trial id, so a restarted or resumed trial finds its own
    checkpoints and continues from them (`experiment.train_run_name`).
    """
    # Imported here rather than at the top: Ray Train's torch integration adds about a second
    # to every trial process that imports this module, and in-trial trials never use it.
    from ray.train.torch import TorchConfig, TorchTrainer
    from ray.tune.integration.ray_train import TuneReportCallback

    configure_ray_data()
    use_gpu = plan.gpus_per_worker > 0
    worker_resources = {"CPU": plan.cpus_per_worker}
    if use_gpu:
        worker_resources["GPU"] = plan.gpus_per_worker
    trainer = TorchTrainer(
        partial(train_worker, plan=plan),
        train_loop_config=config,
        datasets=datasets,
        dataset_config=ray.train.DataConfig(datasets_to_split=["train"]),
        # NCCL refuses several ranks of one run on the same GPU (ray#48012); gloo does not.
        torch_config=TorchConfig(backend="nccl" if use_gpu and plan.gpus_per_worker >= 1 else "gloo"),
        scaling_config=ray.train.ScalingConfig(num_workers=plan.workers, use_gpu=use_gpu,
                                               resources_per_worker=worker_resources),
        run_config=ray.train.RunConfig(
            name=experiment.train_run_name(tune.get_context().get_trial_id()),
            storage_path=plan.storage_path,
            checkpoint_config=ray.train.CheckpointConfig(num_to_keep=2),
            failure_config=ray.train.FailureConfig(max_failures=0),
            callbacks=[TuneReportCallback()]),
    )
    trainer.fit()


EXECUTORS = {"in_trial": run_in_trial, "torch_trainer": run_torch_trainer}
