"""The LR range test and steps-to-fit, as plain functions over a `step(lr) -> loss` callable.

The range test (Smith 2017, "Cyclical Learning Rates"; fastai's `lr_find`): one short run that
raises the learning rate exponentially every step from `start_lr` to `end_lr`, smooths the loss
with a bias-corrected moving average, and stops once the smoothed loss exceeds `stop_factor`
times its best. Steps-to-fit (the first phase of the Glideator seed's learning-rate search)
counts the steps a fixed learning rate needs to bring the training loss on a small fixed subset
below a share of its first value; it sizes the epoch budget.

Nothing here knows about Ray or a workload, so a problem with a known answer (a linear regression
under SGD, whose stable range follows from the data's scale) can test it directly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

Step = Callable[[float], float]   # set the learning rate, take one optimiser step, return the loss


@dataclass(frozen=True)
class Curve:
    lr: np.ndarray
    loss: np.ndarray
    smoothed: np.ndarray
    stopped_early: bool     # the loss blew up before end_lr was reached


@dataclass(frozen=True)
class Suggestion:
    steepest_lr: float      # where the smoothed loss falls fastest per decade of LR
    min_loss_lr: float      # where the smoothed loss is lowest, just before it blows up
    low: float              # a loguniform search range
    high: float

    @property
    def lr(self) -> float:
        """One learning rate to start from: fastai's rule, a tenth of the minimum-loss LR."""
        return self.min_loss_lr / 10


def schedule(start_lr: float, end_lr: float, num_steps: int) -> np.ndarray:
    """Exponentially spaced learning rates, start_lr first and end_lr last."""
    return start_lr * (end_lr / start_lr) ** (np.arange(num_steps) / (num_steps - 1))


def range_test(step: Step, *, start_lr: float = 1e-7, end_lr: float = 10.0, num_steps: int = 100,
               smoothing: float = 0.98, stop_factor: float = 4.0) -> Curve:
    """Run the range test; the curve ends at the first step whose smoothed loss diverged."""
    lrs, losses, smoothed = [], [], []
    average, best = 0.0, math.inf
    for i, lr in enumerate(schedule(start_lr, end_lr, num_steps)):
        loss = float(step(float(lr)))
        if not math.isfinite(loss):
            return Curve(np.array(lrs), np.array(losses), np.array(smoothed), stopped_early=True)
        average = smoothing * average + (1 - smoothing) * loss
        value = average / (1 - smoothing ** (i + 1))
        lrs.append(float(lr))
        losses.append(loss)
        smoothed.append(value)
        best = min(best, value)
        if value > stop_factor * best:
            return Curve(np.array(lrs), np.array(losses), np.array(smoothed), stopped_early=True)
    return Curve(np.array(lrs), np.array(losses), np.array(smoothed), stopped_early=False)


def suggest(curve: Curve, *, min_span: float = 10.0) -> Suggestion:
    """Read a range from the curve.

    The minimum-loss LR is where training is fastest just before it becomes unstable, so it is
    too high to train with for long; fastai's rule takes a tenth of it. The steepest descent of
    the log loss (searched between the first tenth of the curve, where the moving average still
    warms up, and the minimum) is where the loss responds most to the learning rate. The range spans
    both, widened geometrically to at least `min_span` (one decade), and never reaches the
    minimum-loss LR itself.

    Raises:
        ValueError: the curve is too short to read (the loss diverged at once: lower start_lr).
    """
    if len(curve.lr) < 5:
        raise ValueError(f"the range test ran only {len(curve.lr)} steps before the loss diverged; "
                         "lower lr_find.start_lr")
    i_min = int(np.argmin(curve.smoothed))
    min_loss_lr = float(curve.lr[i_min])
    first = max(1, len(curve.lr) // 10)
    if i_min - first >= 2:
        # Relative change per decade: a loss that falls from 800 to 0.01 and one that falls
        # from 0.69 to 0.3 are read alike, and early noise on a large loss does not win.
        log_loss = np.log(np.maximum(curve.smoothed, 1e-12))
        slope = np.gradient(log_loss, np.log10(curve.lr))[first:i_min]
        steepest_lr = float(curve.lr[first + int(np.argmin(slope))])
    else:  # the loss fell only at the very start: the minimum is the steepest point we have
        steepest_lr = min_loss_lr / 10
    low, high = sorted((steepest_lr, min_loss_lr / 10))
    if high / low < min_span:
        widen = math.sqrt(min_span * low / high)
        low, high = low / widen, high * widen
    high = min(high, min_loss_lr / 2)
    low = min(low, high / min_span)
    return Suggestion(steepest_lr=steepest_lr, min_loss_lr=min_loss_lr,
                      low=_round(low), high=_round(high))


def steps_to_fit(step: Step, *, lr: float, loss_fraction: float = 0.1, max_steps: int = 2000,
                 smoothing: float = 0.9) -> tuple[int | None, float, float]:
    """Steps until the smoothed loss falls below `loss_fraction` x the first loss.

    Returns (steps or None when max_steps did not suffice, first loss, last smoothed loss).
    """
    first = average = None
    for i in range(1, max_steps + 1):
        loss = float(step(lr))
        if not math.isfinite(loss):
            return None, first if first is not None else loss, loss
        first = loss if first is None else first
        average = loss if average is None else smoothing * average + (1 - smoothing) * loss
        if average <= loss_fraction * first:
            return i, first, average
    return None, first, average


def _round(x: float) -> float:
    """Two significant digits: bounds a person can read and type."""
    return float(f"{x:.2g}")
