"""What runs inside one Tune trial: the workload's kind, fed by Ray Data, on one of two executors.

- `in_trial`: the trial trains in the Tune trial process itself and reports with `tune.report`.
  One worker, no extra actors: the cheap path (see BENCHMARKS.md), the default for one worker.
- `torch_trainer`: the trial is the driver of a Ray Train `TorchTrainer` (the Ray 2.60 Train V2
  pattern). Each worker consumes its split of the stream, gradients are all-reduced (DDP), and
  `TuneReportCallback` carries rank 0's reports back to Tune.

Either way the workload's kind (raysweep.trainables: raysweep's loop, model families, an own
loop) trains through a `TrialSession` made here, so a config gives the same metrics on either.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Callable, Iterator

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
from raysweep.trainables import TrialData, kind_of
from raysweep.training import checkpoint, loop
from raysweep.training.config import TrainingConfig
from raysweep.workloads import config_from_trial, load_workload

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
    data_path: str = ""           # the spec's data.path, absolute (an own loop may read it itself)
    metric: str | None = None     # the spec's metric and mode: a TorchTrainer keeps its best checkpoints by them
    mode: str = "min"

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


@dataclass
class TrialSession:
    """The executor's side of a trial (trainables.Session): reports go to Tune in the trial
    process, or to Ray Train from a TorchTrainer's worker (rank 0's checkpoints only), each
    with where the trial ran and, in its checkpoint, every report so far."""

    meta: dict
    data: TrialData
    device: torch.device
    threads: int
    resumed: Path | None
    world_rank: int
    world_size: int
    data_path: str
    send: Callable[[dict, str | None], None]      # (metrics, a checkpoint directory or None) -> Tune or Train
    wrap: Callable[[torch.nn.Module], torch.nn.Module] = lambda model: model
    where: dict = field(default_factory=dict)     # placement(): the node and GPUs, in every report
    history: list[dict] = field(default_factory=list)

    def report(self, metrics: dict, checkpoint_writer=None) -> None:
        metrics = {**metrics, **self.where}
        self.history.append(metrics)
        if checkpoint_writer is None or self.world_rank != 0:
            self.send(metrics, None)
            return
        with tempfile.TemporaryDirectory() as directory:
            checkpoint_writer(Path(directory))
            checkpoint.seal(directory, self.history)
            self.send(metrics, directory)

    def prepare_model(self, model: torch.nn.Module) -> torch.nn.Module:
        return self.wrap(model)


def _unread(*args):
    raise RuntimeError("raysweep read no data for this trial: data.path holds no meta.json, so the loop reads it "
                       "itself (session.data_path); write a meta.json with raysweep data describe for data.train()")


def trial_data(cfg: TrainingConfig, train_ds, val_ds) -> TrialData:
    """A trial's batches (as epoch_data cuts them) and its splits whole (for model families)."""
    if train_ds is None:   # a loop of its own that reads data.path itself
        return TrialData(train=_unread, val=_unread, whole=_unread)
    batches = epoch_data(cfg, train_ds, val_ds)
    return TrialData(train=batches.train, val=batches.val,
                     whole=lambda split: whole_split({"train": train_ds, "val": val_ds}[split]))


@contextlib.contextmanager
def resumed_from(saved) -> Iterator[Path | None]:
    """The directory of the checkpoint Tune or Train hands a restarted trial (None: a fresh one),
    open while the trial trains."""
    if saved is None:
        yield None
        return
    with saved.as_directory() as directory:
        yield Path(directory)


def _tune_send(metrics: dict, directory: str | None) -> None:
    tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(directory) if directory else None)


# --- executor 1: the trial trains in the Tune trial process -------------------------------------

def run_in_trial(config: dict, *, plan: TrialPlan, datasets: dict) -> None:
    """Tune function trainable: the workload's kind trains here, reporting each epoch to Tune."""
    cfg = plan.config(config)
    use_cpus(plan.cpus_per_worker)
    workload = load_workload(plan.workload)
    device = trial_device(plan)
    _cpu_despite_gpus(device, plan.gpus_per_worker > 0)
    with resumed_from(tune.get_checkpoint()) as resumed:
        session = TrialSession(plan.meta, trial_data(cfg, datasets.get("train"), datasets.get("val")), device,
                               max(1, int(plan.cpus_per_worker)), resumed, 0, 1, plan.data_path, _tune_send,
                               where=placement(plan.gpus_per_worker > 0),
                               history=checkpoint.reports(resumed) if resumed else [])
        kind_of(workload).run(workload, cfg, session)


# --- executor 2: a TorchTrainer driven from the Tune trial --------------------------------------

def train_worker(config: dict, *, plan: TrialPlan) -> None:
    """Per-worker loop under Ray Train: the kind trains with this worker's share of the stream,
    its model wrapped for DDP."""
    import ray.train.torch  # here, not at the top: see run_torch_trainer

    configure_ray_data()
    cfg = plan.config(config)
    use_cpus(plan.cpus_per_worker)
    device = train_device()
    workload = load_workload(plan.workload)
    wrap = partial(ray.train.torch.prepare_model, move_to_device=device) if plan.workers > 1 else (lambda m: m)
    context = ray.train.get_context()
    _cpu_despite_gpus(device, plan.gpus_per_worker > 0)

    def send(metrics: dict, directory: str | None) -> None:
        ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(directory) if directory else None)

    data = trial_data(cfg, *(ray.train.get_dataset_shard(s) for s in ("train", "val"))) if plan.meta \
        else trial_data(cfg, None, None)   # a loop of its own that reads data.path itself
    with resumed_from(ray.train.get_checkpoint()) as resumed:
        session = TrialSession(plan.meta, data, device, max(1, int(plan.cpus_per_worker)), resumed,
                               context.get_world_rank(), context.get_world_size(), plan.data_path, send, wrap=wrap,
                               where=placement(plan.gpus_per_worker > 0),
                               history=checkpoint.reports(resumed) if resumed else [])
        kind_of(workload).run(workload, cfg, session)


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
            checkpoint_config=ray.train.CheckpointConfig(num_to_keep=2, checkpoint_score_attribute=plan.metric,
                                                         checkpoint_score_order=plan.mode),
            failure_config=ray.train.FailureConfig(max_failures=0),
            callbacks=[TuneReportCallback()]),
    )
    trainer.fit()


EXECUTORS = {"in_trial": run_in_trial, "torch_trainer": run_torch_trainer}
