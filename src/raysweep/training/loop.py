"""The loop over epochs and batches, shared by every workload and both trial executors.

It knows a workload only through the `Trainable` contract (`training/contract.py`: four
functions and `METRICS`), receives batches from an `EpochData`, and hands each epoch's metrics
and state to a `report` callable. It never touches Ray: the trial executors
(`raysweep.runner.executors`) decide where batches come from and where reports and
checkpoints go. Model and optimiser construction
(`build`) stay apart from the loop (`run_epochs`) so that a fused cohort can reuse the loop.

Every hyperparameter it reads is a field of `TrainingConfig`, which every workload's Config
extends: mixed precision, accumulation, clipping, the LR schedule and early stopping work the
same for every workload.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

import numpy as np
import torch
from torch import nn

from raysweep.training import latency, optimizers, precision, returns, schedules
from raysweep.training.checkpoint import BEST_FILE, LAST_FILE
from raysweep.training.config import TrainingConfig
from raysweep.training.contract import Batch, Trainable
from raysweep.training.early_stopping import EarlyStopping
from raysweep.training.metrics import BETA_KEY

# report(metrics, files): files maps checkpoint file names to what torch.save writes into
# them (None: this report carries no checkpoint).
Report = Callable[[dict[str, Any], dict[str, dict] | None], None]


class DivergedError(RuntimeError):
    """The training loss became NaN or infinite; the trial is marked diverged."""


@dataclass
class EpochData:
    """Where batches come from: `train(epoch)` and `val()` each return a fresh iterable."""

    train: Callable[[int], Iterable[Batch]]
    val: Callable[[], Iterable[Batch]]


@dataclass
class Trainee:
    """What one trial trains: the model and its optimiser state, built once per trial."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    first_epoch: int = 0
    precision: precision.Precision = field(default_factory=precision.Precision)
    stopper: EarlyStopping = field(default_factory=EarlyStopping)
    # The dataset's meta.json for compute_metrics, with the config's F-beta beta (BETA_KEY).
    meta: dict = field(default_factory=dict)
    # The workload functions whose first return was checked (training/returns.py).
    checked: returns.Checked = field(default_factory=returns.Checked)


def build(workload: Trainable, cfg: TrainingConfig, meta: dict, *, device: torch.device,
          wrap_model: Callable[[nn.Module], nn.Module] = lambda m: m,
          resume: dict[str, dict] | None = None) -> Trainee:
    """Seed, build the model, its optimiser (training/optimizers.py), the LR schedule, precision
    and early stopping.

    `resume` holds a checkpoint's files (`LAST_FILE`, and `BEST_FILE` where written): the trial
    continues after the last epoch it saved, with the optimiser, schedule, loss scale,
    early-stopping record and torch's random state (dropout) as they were, so a trial paused by
    its scheduler or retried after a fault reports what it would have without the break.
    """
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed)
    model = returns.model(workload.build_model(cfg, meta)).to(device)
    last = (resume or {}).get(LAST_FILE)
    if last is not None:
        model.load_state_dict(last["model"])
    model = wrap_model(model)
    optimizer = optimizers.build(workload, getattr(model, "module", model), cfg)   # DDP's own module: its names
    scheduler = schedules.build(optimizer, cfg.lr_schedule, gamma=cfg.lr_decay, t0=cfg.lr_t0,
                                t_mult=cfg.lr_t_mult, eta_min=cfg.lr_min, warmup_epochs=cfg.warmup_epochs)
    trainee = Trainee(model, optimizer, scheduler, precision=precision.choose(cfg.precision, device),
                      stopper=EarlyStopping(metric=cfg.early_stopping_metric,
                                            mode=workload.METRICS.get(cfg.early_stopping_metric, "min"),
                                            patience=cfg.early_stopping_patience,
                                            min_delta=cfg.early_stopping_min_delta),
                      meta={**meta, BETA_KEY: cfg.fbeta_beta})
    if last is not None:
        optimizer.load_state_dict(last["optimizer"])
        scheduler.load_state_dict(last["scheduler"])
        trainee.precision.load_state_dict(last.get("precision", {}))
        best = (resume or {}).get(BEST_FILE)
        if "early_stopping" in last:
            trainee.stopper.load_state_dict(last["early_stopping"], best["model"] if best else None)
        if "rng" in last:
            torch.set_rng_state(last["rng"])
        if "cuda_rng" in last and device.type == "cuda" and len(last["cuda_rng"]) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(last["cuda_rng"])
        trainee.first_epoch = int(last["epoch"])
    return trainee


def _to_device(batch: Batch, device: torch.device) -> Batch:
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


def forward_backward(workload: Trainable, cfg: TrainingConfig, trainee: Trainee, batch: Batch, *, device: torch.device,
                     scale: float = 1.0) -> torch.Tensor:
    """Loss and gradients of one batch, added to those already held; returns the detached loss.

    `scale` < 1 averages the gradients of several batches (gradient accumulation).
    """
    batch = _to_device(batch, device)
    with trainee.precision.autocast():
        returned = workload.compute_loss(trainee.model, batch, cfg)
    loss = returns.loss(returned) if trainee.checked.first("compute_loss") else returned[0]
    trainee.precision.backward(loss * scale if scale != 1.0 else loss)
    return loss.detach().float()


def optimizer_step(cfg: TrainingConfig, trainee: Trainee) -> None:
    """Clip the gradient norm where the config asks (`grad_clip_norm` > 0), step, clear."""
    if cfg.grad_clip_norm:
        trainee.precision.unscale(trainee.optimizer)
        torch.nn.utils.clip_grad_norm_(trainee.model.parameters(), cfg.grad_clip_norm)
    trainee.precision.step(trainee.optimizer)
    trainee.optimizer.zero_grad(set_to_none=True)


def train_step(workload: Trainable, cfg: TrainingConfig, trainee: Trainee, batch: Batch, *, device: torch.device) -> torch.Tensor:
    """One optimiser step on one batch; returns the detached loss (on the device, no sync).

    The LR range test and the I/O search call it, so they measure and train what epochs do.
    """
    loss = forward_backward(workload, cfg, trainee, batch, device=device)
    optimizer_step(cfg, trainee)
    return loss


BAD_INPUT = "bad input data"   # in a DivergedError's message where the batch, not the model, was at fault


def divergence(loss: torch.Tensor, batch: Batch, cfg: TrainingConfig, *, epoch: int, step: int) -> str:
    """Why the loss stopped being a number. The batch is checked first: NaN or infinite inputs
    call for fixing the data, and lowering the learning rate would not help."""
    where = f"train_loss became {loss.item()} at epoch {epoch + 1}, step {step + 1}"
    broken = {name: int((~torch.isfinite(values)).sum()) for name, values in batch.items()
              if values.is_floating_point() and not torch.isfinite(values).all()}
    if broken:
        counts = ", ".join(f"{name} ({n} values)" for name, n in broken.items())
        return (f"{where}: the batch holds NaN or infinite values in {counts}: {BAD_INPUT}, not the learning "
                "rate. Fix or re-import the dataset; raysweep validate finds them.")
    return f"{where} (learning_rate={cfg.learning_rate:g}). Lower learning_rate or its search range."


def rows_in(batch: Batch) -> int:
    return len(next(iter(batch.values())))


def train_epoch(workload: Trainable, cfg: TrainingConfig, trainee: Trainee, batches: Iterable[Batch], *,
                epoch: int, device: torch.device) -> float:
    """One pass over the training batches; returns the mean training objective per row.

    With `grad_accumulation` = k, the optimiser steps once every k batches on their averaged
    gradients: k batches of n rows then train like one batch of k x n rows. A last group of
    fewer than k batches still steps.
    """
    trainee.model.train()
    trainee.optimizer.zero_grad(set_to_none=True)
    k = max(1, cfg.grad_accumulation)
    total = torch.zeros((), device=device)  # summed on the device: no sync per step
    n_rows = 0
    step = -1
    for step, batch in enumerate(batches):
        loss = forward_backward(workload, cfg, trainee, batch, device=device, scale=1.0 / k)
        if not torch.isfinite(loss):
            raise DivergedError(divergence(loss, batch, cfg, epoch=epoch, step=step))
        if (step + 1) % k == 0:
            optimizer_step(cfg, trainee)
        total += loss * rows_in(batch)
        n_rows += rows_in(batch)
    if (step + 1) % k:
        optimizer_step(cfg, trainee)
    trainee.scheduler.step()
    return float(total) / max(n_rows, 1)


@torch.no_grad()
def evaluate(workload: Trainable, trainee: Trainee, batches: Iterable[Batch], *,
             device: torch.device) -> dict[str, float]:
    """Predict the whole validation split, then let the workload compute its metrics.

    A workload that lists `latency_ms` in its METRICS also gets the model's inference timed
    (`time_inference`) on the first validation batch; `measure_latency` replaces that latency_ms
    with its own measurement (`run_epochs`).
    """
    trainee.model.eval()
    outputs, labels, first = [], [], None
    target = trainee.meta.get("columns", {}).get("labels", "labels")   # the column meta.json reads as labels
    for batch in batches:
        batch = _to_device(batch, device)
        first = batch if first is None else first
        with trainee.precision.autocast():
            predicted = workload.predict(trainee.model, batch)
        if trainee.checked.first("predict"):
            returns.outputs(predicted, rows_in(batch))
        outputs.append(predicted.float().cpu())
        labels.append(batch[target].float().cpu())
    metrics = workload.compute_metrics(torch.cat(outputs).numpy(), torch.cat(labels).numpy(), trainee.meta)
    if trainee.checked.first("compute_metrics"):
        metrics = returns.metrics(metrics, workload.METRICS, trainee.meta.get("task"))
    else:
        metrics = returns.as_floats(metrics)   # a one-element tensor becomes a float every epoch
    if "latency_ms" in workload.METRICS and first is not None:
        metrics.update(time_inference(workload, trainee, first, device=device))
    return metrics


@torch.no_grad()
def time_inference(workload: Trainable, trainee: Trainee, batch: Batch, *, device: torch.device,
                   repeats: int = 20) -> dict[str, float]:
    """Median latency of one row (ms) and throughput of a whole batch (rows/s), after warm-up.

    One row is what a real-time controller asks of the model; a batch is what offline scoring
    does. The median resists the odd scheduling hiccup of a shared CPU.
    """
    def predict(b: Batch) -> None:
        with trainee.precision.autocast():
            workload.predict(trainee.model, b)
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    one = {k: v[:1] for k, v in batch.items()}
    latency = median_seconds(lambda: predict(one), repeats=repeats)
    batch_s = median_seconds(lambda: predict(batch), repeats=3, warmup=0)
    return {"latency_ms": latency * 1e3, "throughput_rows_per_s": rows_in(batch) / max(batch_s, 1e-9)}


@torch.no_grad()
def median_seconds(call: Callable[[], Any], *, repeats: int, warmup: int = 3) -> float:
    """Median wall time of `call()` over `repeats` runs after `warmup` untimed ones."""
    for _ in range(warmup):
        call()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def latency_metrics(workload: Trainable, cfg: TrainingConfig, trainee: Trainee, model: nn.Module,
                    timed_rows: latency.FirstRows, *, device: torch.device) -> dict[str, float | int]:
    """`latency_ms` and `parameters` of `model` (unwrapped from DDP) on the kept validation rows;
    nothing where the validation split held none."""
    rows = timed_rows.rows()
    if rows is None:
        return {}
    return latency.of_workload(workload, model, rows, cfg, meta=trainee.meta, device=device)


def checkpoint_files(trainee: Trainee, epoch: int) -> dict[str, dict]:
    """The last epoch's full state, and the best epoch's weights where early stopping has one."""
    model = getattr(trainee.model, "module", trainee.model)  # unwrap DDP
    files = {LAST_FILE: {"model": model.state_dict(), "optimizer": trainee.optimizer.state_dict(),
                         "scheduler": trainee.scheduler.state_dict(),
                         "precision": trainee.precision.state_dict(),
                         "early_stopping": trainee.stopper.state_dict(), "epoch": epoch,
                         "rng": torch.get_rng_state()}}
    if torch.cuda.is_available():
        files[LAST_FILE]["cuda_rng"] = torch.cuda.get_rng_state_all()
    stopper = trainee.stopper
    if stopper.best_weights is not None:
        files[BEST_FILE] = {"model": stopper.best_weights, "epoch": stopper.best_epoch,
                            "metrics": stopper.best_metrics}
    return files


def run_epochs(workload: Trainable, cfg: TrainingConfig, trainee: Trainee, data: EpochData, report: Report, *,
               device: torch.device) -> None:
    """Train from `trainee.first_epoch` to `cfg.epochs`, reporting after every epoch.

    With `early_stopping_patience` > 0, training stops once the monitored metric has not
    improved for that many epochs. At that epoch, or at the last one, where an earlier epoch
    was better, the best weights are restored and evaluated before the report, so the trial's
    final result and model are the best epoch's (the report says `restored_best_epoch`; its
    train_loss is still the epoch's own). Restoring before the report, not after, matters:
    ASHA stops a trial at its final epoch and would never see a later report.

    With `measure_latency`, the epochs `latency_every` names also report `latency_ms` and
    `parameters` (training/latency.py), timed on rows kept from the validation pass, after any
    restore, so they describe the model the report's checkpoint deploys. Under DDP rank 0 times
    its own module; the other ranks report without them (Tune keeps rank 0's reports).
    """
    model = getattr(trainee.model, "module", trainee.model)
    stopper = trainee.stopper
    timed_rows = latency.FirstRows(cfg.latency_batch_size) if cfg.measure_latency and latency.measures_here() else None
    for epoch in range(trainee.first_epoch, cfg.epochs):
        train_loss = train_epoch(workload, cfg, trainee, data.train(epoch), epoch=epoch, device=device)
        val_batches = data.val() if timed_rows is None else timed_rows.tap(data.val())
        val_metrics = evaluate(workload, trainee, val_batches, device=device)
        if math.isnan(val_metrics.get("val_loss", 0.0)):
            raise DivergedError(f"val_loss became NaN at epoch {epoch + 1}. Lower learning_rate.")
        metrics = {"epoch": epoch + 1, "train_loss": train_loss, **val_metrics,
                   "lr": trainee.optimizer.param_groups[0]["lr"]}
        stop = stopper.update(epoch + 1, metrics, model)
        files = checkpoint_files(trainee, epoch + 1)
        final = stop or epoch + 1 == cfg.epochs
        if final and cfg.early_stopping_patience > 0 and 0 < stopper.best_epoch < epoch + 1:
            # The state_dict holds the live tensors that restore() overwrites: keep the last epoch's.
            files[LAST_FILE]["model"] = {k: v.clone() for k, v in files[LAST_FILE]["model"].items()}
            stopper.restore(model)
            metrics.update(evaluate(workload, trainee, data.val(), device=device),
                           restored_best_epoch=stopper.best_epoch)
        if timed_rows is not None and latency.due(cfg, final=final):
            metrics.update(latency_metrics(workload, cfg, trainee, model, timed_rows, device=device))
        report(metrics, files)
        if stop:
            break
