"""The loop over epochs and batches, shared by every workload and both trial executors.

It knows a workload only through four functions (`build_model`, `compute_loss`, `predict`,
`compute_metrics`), receives batches from an `EpochData`, and hands each epoch's metrics and
state to a `report` callable. It never touches Ray: the executors in `raysweep.trial` decide
where batches come from and where reports and checkpoints go. Model and optimiser construction
(`build`) stay apart from the loop (`run_epochs`) so that a fused cohort can reuse the loop.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Iterable

import numpy as np
import torch
from torch import nn

from raysweep.training import schedules

Batch = dict[str, torch.Tensor]
# report(metrics, state): state is the checkpoint payload (None where nothing is saved).
Report = Callable[[dict[str, Any], dict[str, Any] | None], None]


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


def build(workload, cfg, meta: dict, *, device: torch.device,
          wrap_model: Callable[[nn.Module], nn.Module] = lambda m: m,
          resume_state: dict | None = None) -> Trainee:
    """Seed, build the model, Adam and the config's LR schedule; restore from a checkpoint.

    The schedule comes from the config's `lr_schedule` fields where a workload has them
    (`schedules.build`); a workload without them keeps a constant learning rate unless it has
    `lr_decay` (exponential decay per epoch).
    """
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed)
    model = workload.build_model(cfg, meta).to(device)
    if resume_state is not None:
        model.load_state_dict(resume_state["model"])
    model = wrap_model(model)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.learning_rate)
    scheduler = schedules.build(
        optimizer, getattr(cfg, "lr_schedule", "exponential" if hasattr(cfg, "lr_decay") else "constant"),
        gamma=getattr(cfg, "lr_decay", 1.0), t0=getattr(cfg, "lr_t0", 10), t_mult=getattr(cfg, "lr_t_mult", 1),
        eta_min=getattr(cfg, "lr_min", 0.0), warmup_epochs=getattr(cfg, "warmup_epochs", 0))
    first_epoch = 0
    if resume_state is not None:
        optimizer.load_state_dict(resume_state["optimizer"])
        scheduler.load_state_dict(resume_state["scheduler"])
        first_epoch = int(resume_state["epoch"])
    return Trainee(model, optimizer, scheduler, first_epoch)


def _to_device(batch: Batch, device: torch.device) -> Batch:
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


def forward_backward(workload, cfg, trainee: Trainee, batch: Batch, *, device: torch.device,
                     scale: float = 1.0) -> torch.Tensor:
    """Loss and gradients of one batch, added to those already held; returns the detached loss.

    `scale` < 1 averages the gradients of several batches (gradient accumulation).
    """
    batch = _to_device(batch, device)
    loss, _ = workload.compute_loss(trainee.model, batch, cfg)
    (loss * scale if scale != 1.0 else loss).backward()
    return loss.detach()


def optimizer_step(cfg, trainee: Trainee) -> None:
    """Clip the gradient norm where the config asks (`grad_clip_norm` > 0), step, clear."""
    max_norm = getattr(cfg, "grad_clip_norm", 0.0)
    if max_norm:
        torch.nn.utils.clip_grad_norm_(trainee.model.parameters(), max_norm)
    trainee.optimizer.step()
    trainee.optimizer.zero_grad(set_to_none=True)


def train_step(workload, cfg, trainee: Trainee, batch: Batch, *, device: torch.device) -> torch.Tensor:
    """One optimiser step on one batch; returns the detached loss (on the device, no sync).

    The LR range test and the I/O search call it, so they measure and train what epochs do.
    """
    loss = forward_backward(workload, cfg, trainee, batch, device=device)
    optimizer_step(cfg, trainee)
    return loss


def rows_in(batch: Batch) -> int:
    return len(next(iter(batch.values())))


def train_epoch(workload, cfg, trainee: Trainee, batches: Iterable[Batch], *,
                epoch: int, device: torch.device) -> float:
    """One pass over the training batches; returns the mean training objective per row.

    With `grad_accumulation` = k, the optimiser steps once every k batches on their averaged
    gradients: k batches of n rows then train like one batch of k x n rows. A last group of
    fewer than k batches still steps.
    """
    trainee.model.train()
    trainee.optimizer.zero_grad(set_to_none=True)
    k = max(1, getattr(cfg, "grad_accumulation", 1))
    total = torch.zeros((), device=device)  # summed on the device: no sync per step
    n_rows = 0
    step = -1
    for step, batch in enumerate(batches):
        loss = forward_backward(workload, cfg, trainee, batch, device=device, scale=1.0 / k)
        if not torch.isfinite(loss):
            raise DivergedError(
                f"train_loss became {loss.item()} at epoch {epoch + 1}, step {step + 1} "
                f"(learning_rate={cfg.learning_rate:g}). Lower learning_rate or its search range.")
        if (step + 1) % k == 0:
            optimizer_step(cfg, trainee)
        total += loss * rows_in(batch)
        n_rows += rows_in(batch)
    if (step + 1) % k:
        optimizer_step(cfg, trainee)
    trainee.scheduler.step()
    return float(total) / max(n_rows, 1)


@torch.no_grad()
def evaluate(workload, trainee: Trainee, batches: Iterable[Batch], *,
             device: torch.device) -> dict[str, float]:
    """Predict the whole validation split, then let the workload compute its metrics."""
    trainee.model.eval()
    outputs, labels = [], []
    for batch in batches:
        batch = _to_device(batch, device)
        outputs.append(workload.predict(trainee.model, batch).float().cpu())
        labels.append(batch["labels"].float().cpu())
    return workload.compute_metrics(torch.cat(outputs).numpy(), torch.cat(labels).numpy())


def checkpoint_state(trainee: Trainee, epoch: int) -> dict[str, Any]:
    model = getattr(trainee.model, "module", trainee.model)  # unwrap DDP
    return {"model": model.state_dict(), "optimizer": trainee.optimizer.state_dict(),
            "scheduler": trainee.scheduler.state_dict(), "epoch": epoch}


def run_epochs(workload, cfg, trainee: Trainee, data: EpochData, report: Report, *,
               device: torch.device) -> None:
    """Train from `trainee.first_epoch` to `cfg.epochs`, reporting after every epoch."""
    for epoch in range(trainee.first_epoch, cfg.epochs):
        train_loss = train_epoch(workload, cfg, trainee, data.train(epoch), epoch=epoch, device=device)
        val_metrics = evaluate(workload, trainee, data.val(), device=device)
        if math.isnan(val_metrics.get("val_loss", 0.0)):
            raise DivergedError(f"val_loss became NaN at epoch {epoch + 1}. Lower learning_rate.")
        metrics = {"epoch": epoch + 1, "train_loss": train_loss, **val_metrics,
                   "lr": trainee.optimizer.param_groups[0]["lr"]}
        report(metrics, checkpoint_state(trainee, epoch + 1))
