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
results store.

Adding a scheduler is one entry in `SCHEDULERS`, written here: its `Options` (a frozen
dataclass of the keys it reads, with defaults, types and ranges: search/options.py), its own
`check` of what the ranges cannot say, its builder, which receives the options as checked, and
its stopping `rule` as `raysweep plan` plays it to forecast the epochs (search/budget.py).
Spec validation (`raysweep.spec`) reads the options and the rules; the sweep hands the builder
the options untouched. Builders import Ray Tune when called (see searchers.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from raysweep.checks import is_int
from raysweep.search import budget
from raysweep.search.options import Finding, NoOptions, option, option_keys


@dataclass(frozen=True)
class Trials:
    """What a scheduler knows of the trials besides its options: the epochs each runs, and
    where that number comes from (messages name it)."""

    epochs: int | None
    epochs_key: str = "fixed.epochs"


@dataclass(frozen=True)
class SchedulerKind:
    """One `scheduler.type`: its options and builder, how its stops read, and the searcher it
    needs (BOHB's scheduler and searcher work only as a pair)."""

    build: Callable[[object, Trials], object]   # (its Options as checked, the trials) -> a Tune scheduler
    Options: type = NoOptions
    check: Callable[[object, Trials], list[Finding]] | None = None   # rules across keys and the epochs
    label: str = ""                 # "stopped by <label>"; empty: it stops nothing
    needs_searcher: str | None = None
    pauses: bool = False            # synchronous brackets: trials pause and resume from checkpoints
    rule: Callable = budget.run_all   # its stopping rule as `raysweep plan` plays it (search/budget.py)

    @property
    def keys(self) -> tuple[str, ...]:
        """The `scheduler:` keys it reads besides `type`."""
        return option_keys(self.Options)

    @property
    def stops_early(self) -> bool:
        return bool(self.label)


# The keys several schedulers read, with the same meaning and range in each (a field each time:
# a dataclass takes its fields over).
def _max_t():
    """Epochs a trial may run; None: the epochs each trial runs (`fixed.epochs`)."""
    return option(None, low=1, what="an integer number of epochs")


def _grace_period():
    """Epochs a trial runs before it can be stopped."""
    return option(1, low=1)


def _reduction_factor():
    """How much each rung narrows the field."""
    return option(3.0, low=1, strict=True)


@dataclass(frozen=True)
class ASHA:
    max_t: int | None = _max_t()
    grace_period: int = _grace_period()
    reduction_factor: float = _reduction_factor()
    brackets: int = option(1, low=1)


@dataclass(frozen=True)
class Brackets:
    """HyperBand's and BOHB's."""

    max_t: int | None = _max_t()
    reduction_factor: float = _reduction_factor()


@dataclass(frozen=True)
class Median:
    grace_period: int = _grace_period()
    min_samples_required: int = option(3, low=1)   # trials that must have reached an epoch before it stops any


def within_epochs(options, trials: Trials) -> list[Finding]:
    """A max_t beyond the epochs each trial runs is lowered to them, and a grace period beyond
    max_t (or, without one, the epochs) to that, each with a warning: a smoke run with
    `--set fixed.epochs=1` should run a shipped spec as it is, not ask for two more overrides."""
    found = []
    epochs, bound, bound_key = trials.epochs, trials.epochs, trials.epochs_key
    max_t = getattr(options, "max_t", None)
    if max_t is not None and is_int(epochs) and 1 <= epochs < max_t:
        found.append(Finding("max_t", f"{max_t} is more than {trials.epochs_key} {epochs}: lowered to {epochs}",
                             because_of=(trials.epochs_key,), lowered_to=epochs))
    elif max_t is not None:
        bound, bound_key = max_t, "scheduler.max_t"
    grace = getattr(options, "grace_period", None)
    if grace is not None and is_int(bound) and 1 <= bound < grace:
        found.append(Finding("grace_period", f"{grace} is more than {bound_key} {bound}: lowered to {bound}",
                             because_of=(bound_key,), lowered_to=bound))
    return found


def build_fifo(options: NoOptions, trials: Trials):
    from ray.tune.schedulers import FIFOScheduler

    return FIFOScheduler()


def build_asha(options: ASHA, trials: Trials):
    from ray.tune.schedulers import ASHAScheduler

    return ASHAScheduler(time_attr="epoch", max_t=options.max_t or trials.epochs, grace_period=options.grace_period,
                         reduction_factor=options.reduction_factor, brackets=options.brackets)


def build_hyperband(options: Brackets, trials: Trials):
    from ray.tune.schedulers import HyperBandScheduler

    return HyperBandScheduler(time_attr="epoch", max_t=options.max_t or trials.epochs,
                              reduction_factor=options.reduction_factor)


def build_median(options: Median, trials: Trials):
    import collections

    from ray.tune.schedulers import MedianStoppingRule

    # With too few other trials to compare, Tune's rule pauses a trial for a waiting one once it
    # ran `min_time_slice` since its last pause, which starts at minus infinity: the first such
    # result would pause it. Its last pause taken as epoch 0 and the slice as the epochs, no trial
    # ever pauses: the rule only stops (hard_stop), as raysweep's plan plays it (search/budget.py).
    rule = MedianStoppingRule(time_attr="epoch", grace_period=options.grace_period,
                              min_samples_required=options.min_samples_required, min_time_slice=trials.epochs)
    rule._last_pause = collections.defaultdict(float)
    return rule


def build_bohb(options: Brackets, trials: Trials):
    from ray.tune.schedulers import HyperBandForBOHB

    return HyperBandForBOHB(time_attr="epoch", max_t=options.max_t or trials.epochs,
                            reduction_factor=options.reduction_factor)


SCHEDULERS: dict[str, SchedulerKind] = {
    "fifo": SchedulerKind(build_fifo),
    "asha": SchedulerKind(build_asha, ASHA, within_epochs, label="ASHA", rule=budget.asha),
    "hyperband": SchedulerKind(build_hyperband, Brackets, within_epochs, label="HyperBand", pauses=True,
                               rule=budget.brackets),
    "median": SchedulerKind(build_median, Median, within_epochs, label="median rule", rule=budget.median),
    "bohb": SchedulerKind(build_bohb, Brackets, within_epochs, label="BOHB", needs_searcher="bohb", pauses=True,
                          rule=budget.bohb_brackets),
}
