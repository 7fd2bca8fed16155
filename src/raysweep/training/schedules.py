"""Learning-rate schedules, stepped once per epoch, with an optional linear warm-up in front.

- `constant`: the learning rate never changes.
- `exponential`: lr x gamma each epoch (the Glideator seed's Adam with exponential decay).
- `cosine_restarts`: cosine annealing from lr down to `eta_min` over `t0` epochs, then
  restarting, each cycle `t_mult` times longer (SGDR; the battery seed's `scheduler_T0`).

A warm-up of `warmup_epochs` rises linearly from lr / (warmup_epochs + 1) to lr before the
schedule starts (the brake/coast seed warms up for 8 epochs). All are torch's own schedulers,
so their state saves and restores with a checkpoint.
"""

from __future__ import annotations

import torch
from torch.optim import lr_scheduler

from raysweep.checks import did_you_mean

SCHEDULES = ("constant", "exponential", "cosine_restarts")


def build(optimizer: torch.optim.Optimizer, name: str = "exponential", *, gamma: float = 0.95,
          t0: int = 10, t_mult: int = 1, eta_min: float = 0.0,
          warmup_epochs: int = 0) -> lr_scheduler.LRScheduler:
    """The schedule called `name` for `optimizer`, behind a linear warm-up where asked.

    Raises:
        ValueError: an unknown schedule, listing the known ones.
    """
    if name == "constant":
        schedule = lr_scheduler.ConstantLR(optimizer, factor=1.0, total_iters=0)
    elif name == "exponential":
        schedule = lr_scheduler.ExponentialLR(optimizer, gamma=gamma)
    elif name == "cosine_restarts":
        schedule = lr_scheduler.CosineAnnealingWarmRestarts(optimizer, T_0=t0, T_mult=t_mult, eta_min=eta_min)
    else:
        raise ValueError(f"unknown lr schedule {name!r}.{did_you_mean(name, SCHEDULES)} "
                         f"Known: {', '.join(SCHEDULES)}.")
    if warmup_epochs <= 0:
        return schedule
    warmup = lr_scheduler.LinearLR(optimizer, start_factor=1.0 / (warmup_epochs + 1), total_iters=warmup_epochs)
    return lr_scheduler.SequentialLR(optimizer, [warmup, schedule], milestones=[warmup_epochs])
