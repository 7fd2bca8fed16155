"""The scheduler registry: for each `scheduler.type`, the Tune scheduler it builds and the keys it reads.

| type      | Ray Tune scheduler        | stops a trial when ...                                 | keys                  |
|-----------|---------------------------|--------------------------------------------------------|-----------------------|
| fifo      | FIFOScheduler             | never: every trial runs its epochs                     |                       |
| asha      | ASHAScheduler             | at a rung, it is outside the best 1/reduction_factor   | max_t, grace_period,  |
|           | (asynchronous halving)    | of the trials that reached the rung so far             | reduction_factor, brackets |
| hyperband | HyperBandScheduler        | its bracket halves and it is outside the best share    | max_t, reduction_factor |
|           | (synchronous brackets)    |                                                        |                       |
| median    | MedianStoppingRule        | its best is worse than the median of the others'       | grace_period,         |
|           |                           | running means at the same epoch                        | min_samples_required  |
| bohb      | HyperBandForBOHB          | as hyperband; TuneBOHB (`search.algorithm: bohb`)      | max_t, reduction_factor |
|           |                           | proposes the configs from a model of the results       |                       |

Time is the trial's `epoch`. The synchronous ones (hyperband, bohb) pause trials at a
bracket's rung and resume the survivors from their checkpoints; asha and median decide on
each report and never pause. A trial a scheduler stopped reads "stopped by <label>" in the
results store. Adding a scheduler is one entry in `SCHEDULERS`; spec validation
(`raysweep.spec`) reads its keys and rules, the sweep calls its builder. Builders import Ray
Tune when called (see searchers.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class SchedulerRequest:
    """What a builder gets: the scheduler's settings, epochs resolved (Tune hands it the objective)."""

    max_t: int                 # epochs a trial may run (scheduler.max_t, else fixed.epochs)
    grace_period: int
    reduction_factor: float
    brackets: int
    min_samples_required: int


@dataclass(frozen=True)
class SchedulerKind:
    """One `scheduler.type`: its builder, the spec keys it reads, how its stops read, and the
    searcher it needs (BOHB's scheduler and searcher work only as a pair)."""

    build: Callable[[SchedulerRequest], object]
    keys: tuple[str, ...]
    label: str = ""                 # "stopped by <label>"; empty: it stops nothing
    needs_searcher: str | None = None
    pauses: bool = False            # synchronous brackets: trials pause and resume from checkpoints

    @property
    def stops_early(self) -> bool:
        return bool(self.label)


def build_fifo(request: SchedulerRequest):
    from ray.tune.schedulers import FIFOScheduler

    return FIFOScheduler()


def build_asha(request: SchedulerRequest):
    from ray.tune.schedulers import ASHAScheduler

    return ASHAScheduler(time_attr="epoch", max_t=request.max_t, grace_period=request.grace_period,
                         reduction_factor=request.reduction_factor, brackets=request.brackets)


def build_hyperband(request: SchedulerRequest):
    from ray.tune.schedulers import HyperBandScheduler

    return HyperBandScheduler(time_attr="epoch", max_t=request.max_t, reduction_factor=request.reduction_factor)


def build_median(request: SchedulerRequest):
    from ray.tune.schedulers import MedianStoppingRule

    # With too few other trials to compare, Tune's rule pauses a trial for a waiting one unless
    # it ran `min_time_slice` since its last pause; longer than any trial runs, it never pauses.
    return MedianStoppingRule(time_attr="epoch", grace_period=request.grace_period,
                              min_samples_required=request.min_samples_required, min_time_slice=request.max_t)


def build_bohb(request: SchedulerRequest):
    from ray.tune.schedulers import HyperBandForBOHB

    return HyperBandForBOHB(time_attr="epoch", max_t=request.max_t, reduction_factor=request.reduction_factor)


SCHEDULERS: dict[str, SchedulerKind] = {
    "fifo": SchedulerKind(build_fifo, keys=()),
    "asha": SchedulerKind(build_asha, keys=("max_t", "grace_period", "reduction_factor", "brackets"), label="ASHA"),
    "hyperband": SchedulerKind(build_hyperband, keys=("max_t", "reduction_factor"), label="HyperBand", pauses=True),
    "median": SchedulerKind(build_median, keys=("grace_period", "min_samples_required"), label="median rule"),
    "bohb": SchedulerKind(build_bohb, keys=("max_t", "reduction_factor"), label="BOHB", needs_searcher="bohb",
                          pauses=True),
}
