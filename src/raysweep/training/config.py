"""The hyperparameters every workload shares, so a spec can set them for any workload.

A workload's `Config` subclasses `TrainingConfig` and adds its model's fields (and
`LossChoice` where its loss is picked from the registry); it may change a default, as Glideator
does for `lr_schedule`. The shared loop (`training/loop.py`) reads only these fields.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from raysweep.training import losses, optimizers, precision, schedules

# String hyperparameters shared by every workload and the values they take (checked by validate).
CHOICES = {"lr_schedule": schedules.SCHEDULES, "precision": precision.PRECISIONS,
           "optimizer": tuple(optimizers.OPTIMIZERS), "latency_every": ("epoch", "last")}


@dataclass(frozen=True)
class TrainingConfig:
    epochs: int = 10
    batch_size: int = 512             # rows per optimiser step (per worker under DDP)
    learning_rate: float = 1e-3
    optimizer: str = "adam"           # adam | adamw | sgd | rmsprop (training/optimizers.py)
    weight_decay: float = 0.0         # L2 term (adam, sgd, rmsprop) or decoupled decay (adamw)
    beta1: float = 0.9                # adam, adamw: decay of the first moment
    beta2: float = 0.999              # adam, adamw: decay of the second moment
    eps: float = 1e-8                 # adam, adamw, rmsprop: added to the denominator
    momentum: float = 0.0             # sgd, rmsprop
    nesterov: bool = False            # sgd: Nesterov momentum (needs momentum > 0)
    rmsprop_alpha: float = 0.99       # rmsprop: smoothing of the squared gradients
    lr_schedule: str = "constant"     # constant | exponential | cosine_restarts (training/schedules.py)
    lr_decay: float = 0.95            # exponential: gamma, applied once per epoch
    lr_t0: int = 10                   # cosine_restarts: epochs in the first cycle
    lr_t_mult: int = 1                # cosine_restarts: each cycle this many times longer
    lr_min: float = 0.0               # cosine_restarts: the floor of each cycle
    warmup_epochs: int = 0            # linear warm-up in front of any schedule
    grad_accumulation: int = 1        # optimiser steps every this many batches (averaged gradients)
    grad_clip_norm: float = 0.0       # clip the gradient norm to this; 0 = no clipping
    precision: str = "fp32"           # fp32 | bf16 | fp16 (autocast; fp16 with loss scaling); CUDA only
    early_stopping_patience: int = 0  # stop after this many epochs without improvement; 0 = never
    early_stopping_min_delta: float = 0.0  # an improvement must beat the best by more than this
    early_stopping_metric: str = "val_loss"  # a metric the workload reports (its METRICS gives the mode)
    fbeta_beta: float = 1.0           # the beta of val_fbeta: < 1 weighs precision higher, > 1 recall
    measure_latency: bool = False     # report latency_ms and parameters (training/latency.py)
    latency_batch_size: int = 1       # rows per timed forward pass
    latency_batches: int = 20         # timed passes (after as many warm-up passes); their median is latency_ms
    latency_every: str = "epoch"      # epoch: measured after every epoch | last: after the last epoch only
    shuffle_buffer: int = 4096        # rows permuted together before batching; 0 = no shuffle
    prefetch_batches: int = 1         # blocks fetched (a streamed split: shards read) ahead of the loop
    seed: int = 0


@dataclass(frozen=True)
class LossChoice:
    """Fields for a workload whose loss comes from the registry (`training/losses.py`).

    A `loss_*` field left at None takes the loss's own default; a field the chosen loss does
    not take is ignored, so `loss` can be swept over losses with different parameters.
    """

    loss: str = "mse"
    loss_alpha: float | None = None    # hybrid: weight of MAE; focal: weight of positives
    loss_gamma: float | None = None    # focal: focusing exponent
    loss_delta: float | None = None    # huber: where quadratic turns linear
    loss_epsilon: float | None = None  # mape: floor of |target|


@functools.lru_cache(maxsize=64)
def loss_function(cfg: LossChoice) -> losses.Loss:
    """The registry's loss named by `cfg.loss`, with the `loss_*` fields it takes.

    Cached per (frozen, hashable) config: workloads ask for it on every batch.
    """
    accepted = losses.parameters(cfg.loss) if cfg.loss in losses.LOSSES else {}
    params = {name: getattr(cfg, f"loss_{name}") for name in accepted
              if getattr(cfg, f"loss_{name}", None) is not None}
    return losses.get(cfg.loss, **params)
