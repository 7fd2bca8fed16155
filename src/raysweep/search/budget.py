"""What a sweep will cost in epochs and hours before it runs: its schedule, simulated.

A scheduler's worst case (every trial to its last epoch) says little: ASHA stops most trials at
its first rung, and how many go on depends on the order their results arrive in, which depends
on how many run at once. So the forecast plays the sweep out: `slots` trials at a time, each
epoch taking the measured time (with a little spread, so trials that start together do not
report in lockstep), each result judged by the scheduler's own rule, copied from Ray Tune 2.60
(`Asha`, `MedianRule`; HyperBand's and BOHB's brackets are arithmetic: `bracket_epochs`, the
same brackets filled in the other order). Trials that pause at a bracket's rung are played as
if they ran on: the epochs are exact, the waits are not counted. Scores
are drawn per trial (a level of its own, noise per epoch, a curve that improves); the rules
only compare them, so what matters is that some trials are better than others, not by how much.
A few hundred such plays give the expected epochs, their spread, and the makespan.
"""

from __future__ import annotations

import bisect
import heapq
import math
from dataclasses import dataclass
from typing import Protocol

import numpy as np

SIMULATED_EVENTS = 400_000   # epochs simulated over all plays: a fraction of a second per play at 16 trials
MAX_PLAYS = 200
MIN_PLAYS = 1        # a sweep of 10,000 trials of 20 epochs is played twice


@dataclass(frozen=True)
class Timing:
    """How long a trial takes, in seconds: each epoch; the first epoch's extra (reading the data,
    the first batches); what each trial costs besides its epochs (set up, checkpoints, the
    driver's turn-around between trials in a slot); and what the first trial in a slot costs more
    (a trial process starting: later trials reuse it)."""

    epoch_s: float
    first_epoch_extra_s: float = 0.0
    trial_gap_s: float = 0.0
    slot_start_s: float = 0.0
    spread: float = 0.1   # epochs of different trials differ by about this share
    reports_once: float = 0.0   # the share of trials that report only at their last epoch: never stopped early


@dataclass(frozen=True)
class Forecast:
    """The expected cost of a sweep's trials (not Ray's start-up: phases/plan.py adds it)."""

    trials: int
    max_epochs_per_trial: int
    epochs: float              # expected epochs over all trials
    epochs_low: float          # 10th and 90th percentiles over the plays
    epochs_high: float
    plays: int
    makespan_s: float | None = None    # first trial's start to the last one's end
    trial_seconds: float | None = None  # the trials' durations summed (what resources are held for)

    @property
    def worst_case_epochs(self) -> int:
        return self.trials * self.max_epochs_per_trial


class Rule(Protocol):
    """A scheduler's decision after each epoch's result (higher scores are better)."""

    def add(self, trial: int) -> None: ...

    def keep_going(self, trial: int, epoch: int, score: float) -> bool: ...


class RunAll:
    """FIFO: every trial runs every epoch."""

    def add(self, trial: int) -> None:
        pass

    def keep_going(self, trial: int, epoch: int, score: float) -> bool:
        return True


class Asha:
    """Ray Tune's ASHAScheduler (async_hyperband.py, `_Bracket.on_result`): at each rung a trial
    goes on only if its score is at least the (1 - 1/rf) percentile (numpy's linear one) of those
    recorded at that rung so far; the first to reach a rung always goes on. With several brackets,
    a trial joins one at random, the brackets with more rungs likelier. Each rung's scores are kept
    sorted, so a cutoff costs a lookup, not a percentile over every trial (10,000 trials)."""

    def __init__(self, max_t: int, grace_period: int, reduction_factor: float, brackets: int,
                 rng: np.random.Generator):
        self.rf, self.rng, self.max_t = reduction_factor, rng, max_t
        self.rungs: list[list[tuple[float, set, list]]] = []   # per bracket: (milestone, trials, sorted scores)
        for s in range(brackets):
            count = int(np.log(max_t / grace_period) / np.log(reduction_factor) - s + 1)
            self.rungs.append([(grace_period * reduction_factor ** (k + s), set(), [])
                               for k in reversed(range(count))])
        sizes = np.array([len(r) for r in self.rungs])
        weights = np.e ** (sizes - sizes.max())
        self.weights = weights / weights.sum()
        self.bracket_of: dict[int, int] = {}

    def add(self, trial: int) -> None:
        self.bracket_of[trial] = int(self.rng.choice(len(self.rungs), p=self.weights))

    def keep_going(self, trial: int, epoch: int, score: float) -> bool:
        goes_on = self._judge(trial, epoch, score)
        return goes_on and epoch < self.max_t   # at max_t Tune stops it, and records it (on_trial_complete)

    def _judge(self, trial: int, epoch: int, score: float) -> bool:
        for milestone, seen, scores in self.rungs[self.bracket_of[trial]]:
            if epoch < milestone or trial in seen:
                continue
            cutoff = percentile(scores, (1 - 1 / self.rf) * 100) if scores else None
            seen.add(trial)
            bisect.insort(scores, score)
            return cutoff is None or score >= cutoff
        return True


def percentile(ordered: list[float], q: float) -> float:
    """numpy's linear percentile of an already sorted list."""
    position = q / 100 * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (position - low) * (ordered[high] - ordered[low])


class MedianRule:
    """Ray Tune's MedianStoppingRule as raysweep builds it (hard stop, never pausing: see
    search/schedulers.py): from the grace period on, a trial stops when its best score is below
    the median of the running means (over its reports at epochs grace..t) of the other trials that
    reached epoch t, once at least `min_samples_required` of them have such a mean. Scores sit in
    cumulative arrays, so a decision is one vectorised pass over the trials. (Tune also counts a
    finished trial's last result twice; the plan does not.)"""

    def __init__(self, grace_period: int, min_samples_required: int, trials: int, max_t: int):
        self.grace, self.min_samples = grace_period, min_samples_required
        self.sums = np.zeros((trials, max_t + 1))     # sums[i, t]: trial i's scores reported at epochs 1..t
        self.counts = np.zeros((trials, max_t + 1))   # and how many reports those were
        self.reached = np.zeros(trials, dtype=int)
        self.best = np.full(trials, -np.inf)

    def add(self, trial: int) -> None:
        pass

    def keep_going(self, trial: int, epoch: int, score: float) -> bool:
        last = self.reached[trial]   # a trial that reports only at its end skipped epochs last+1..epoch-1
        self.sums[trial, last + 1:epoch + 1] = self.sums[trial, last]
        self.counts[trial, last + 1:epoch + 1] = self.counts[trial, last]
        self.sums[trial, epoch] += score
        self.counts[trial, epoch] += 1
        self.reached[trial] = epoch
        self.best[trial] = max(self.best[trial], score)
        if epoch < self.grace:
            return True
        others = self.reached >= epoch
        others[trial] = False
        reports = self.counts[others, epoch] - self.counts[others, self.grace - 1]
        means = (self.sums[others, epoch] - self.sums[others, self.grace - 1])[reports > 0] / reports[reports > 0]
        if len(means) < self.min_samples:
            return True
        return not float(np.median(means)) > self.best[trial]


class Planned:
    """A rule whose every trial's epochs are known before it starts (HyperBand's brackets)."""

    def __init__(self, epochs: list[int]):
        self.epochs = epochs

    def add(self, trial: int) -> None:
        pass

    def keep_going(self, trial: int, epoch: int, score: float) -> bool:
        return epoch < self.epochs[trial]


def bracket_epochs(trials: int, max_t: int, reduction_factor: float, largest_first: bool = False) -> list[int]:
    """The epochs each trial runs under Ray Tune's HyperBandScheduler (hyperband.py), in the order
    trials are added: bands of brackets s = 0, 1, ..., each taking ceil(s_max/(s+1) * eta^s) trials
    for int(max_t * eta^-s) epochs, then keeping the best ceil(n/eta) for eta times as many (at most
    max_t), s times. A last bracket only partly filled keeps as many as a full one would.
    `largest_first`: BOHB's HyperBandForBOHB (hb_bohb.py) fills the brackets from the largest s."""
    eta = reduction_factor
    s_max_1 = int(np.round(np.log(max_t) / np.log(eta))) + 1
    order = list(reversed(range(s_max_1))) if largest_first else list(range(s_max_1))
    result: list[int] = []
    while len(result) < trials:
        for s in order:
            r = int(max_t * eta ** (-s))
            if r == 0:
                continue
            size = int(np.ceil(s_max_1 / (s + 1) * eta ** s))
            members = min(size, trials - len(result))
            if members <= 0:
                break
            result.extend(_bracket(members, size, r, s, max_t, eta))
    return result[:trials]


def _bracket(members: int, size: int, r: int, halvings: int, max_t: int, eta: float) -> list[int]:
    """Epochs of each member of one bracket, best-kept first (which member is which does not
    matter to the totals)."""
    epochs = [r] * members
    alive, n = members, size
    for _ in range(halvings):
        n = int(np.ceil(n / eta))
        r = int(min(r * eta, max_t))
        alive = min(alive, n)
        for i in range(alive):
            epochs[i] = r
    return epochs


# Each scheduler's rule, made from its options as validated, the trials' epochs (max_t at most),
# the number of trials and a random generator; `search.SCHEDULERS[type].rule` names one.
def run_all(options, max_t: int, trials: int, rng: np.random.Generator) -> Rule:
    return RunAll()


def asha(options, max_t: int, trials: int, rng: np.random.Generator) -> Rule:
    return Asha(max_t, min(options.grace_period, max_t), options.reduction_factor, options.brackets, rng)


def brackets(options, max_t: int, trials: int, rng: np.random.Generator) -> Rule:
    return Planned(bracket_epochs(trials, max_t, options.reduction_factor))


def bohb_brackets(options, max_t: int, trials: int, rng: np.random.Generator) -> Rule:
    return Planned(bracket_epochs(trials, max_t, options.reduction_factor, largest_first=True))


def median(options, max_t: int, trials: int, rng: np.random.Generator) -> Rule:
    return MedianRule(options.grace_period, options.min_samples_required, trials, max_t)


def forecast(make_rule, options, *, trials: int, epochs: int, slots: int, timing: Timing | None,
             seed: int = 0, events: int = SIMULATED_EVENTS) -> Forecast:
    """Expected epochs (and, given a timing, the makespan and trial-seconds) of `trials` trials
    of at most `epochs` epochs, `slots` at a time, under the rule `make_rule` makes (one of the
    factories above, named by the scheduler's registry entry)."""
    max_epochs = min(getattr(options, "max_t", None) or epochs, epochs)
    if trials <= 0:
        return Forecast(0, max_epochs, 0.0, 0.0, 0.0, 0, 0.0 if timing else None, 0.0 if timing else None)
    plays = int(min(MAX_PLAYS, max(MIN_PLAYS, events // max(1, trials * max_epochs))))
    if make_rule in (run_all, brackets, bohb_brackets) and timing is None:
        plays = 1   # the epochs do not depend on chance: one play says it all
    rng = np.random.default_rng(seed)
    outcomes = [_play(make_rule(options, max_epochs, trials, rng), trials, max_epochs,
                      max(1, slots), timing or Timing(epoch_s=1.0), rng) for _ in range(plays)]
    total = np.array([o[0] for o in outcomes], dtype=float)
    timed = timing is not None
    return Forecast(trials=trials, max_epochs_per_trial=max_epochs, epochs=float(total.mean()),
                    epochs_low=float(np.percentile(total, 10)), epochs_high=float(np.percentile(total, 90)),
                    plays=plays, makespan_s=float(np.mean([o[1] for o in outcomes])) if timed else None,
                    trial_seconds=float(np.mean([o[2] for o in outcomes])) if timed else None)


def _play(rule: Rule, trials: int, max_epochs: int, slots: int, timing: Timing,
          rng: np.random.Generator) -> tuple[int, float, float]:
    """One play of the sweep: (epochs run, makespan, trial-seconds). Trials start in order as
    slots free up; a trial's epochs end in time order across all running trials."""
    level = rng.normal(size=trials)
    pace = np.exp(rng.normal(scale=timing.spread, size=trials)) if timing.spread else np.ones(trials)
    once = rng.random(trials) < timing.reports_once
    events: list[tuple[float, int, int]] = []   # (time an epoch ends, trial, epoch)
    started = {}
    next_trial, epochs_run, busy, end = 0, 0, 0.0, 0.0

    def start(trial: int, at: float, new_slot: bool = False) -> None:
        rule.add(trial)
        started[trial] = at
        first = (timing.trial_gap_s + (timing.slot_start_s if new_slot else 0.0)
                 + (timing.epoch_s + timing.first_epoch_extra_s) * pace[trial])
        heapq.heappush(events, (at + first, trial, 1))

    for _ in range(min(slots, trials)):
        start(next_trial, 0.0, new_slot=True)
        next_trial += 1
    while events:
        now, trial, epoch = heapq.heappop(events)
        epochs_run += 1
        score = level[trial] + 0.3 * rng.normal() - 1 / math.sqrt(epoch)
        if once[trial] and epoch < max_epochs:   # no report until its last epoch: nothing to judge
            heapq.heappush(events, (now + timing.epoch_s * pace[trial], trial, epoch + 1))
            continue
        if rule.keep_going(trial, epoch, score) and epoch < max_epochs:
            heapq.heappush(events, (now + timing.epoch_s * pace[trial], trial, epoch + 1))
            continue
        busy += now - started[trial]
        end = max(end, now)
        if next_trial < trials:
            start(next_trial, now)
            next_trial += 1
    return epochs_run, end, busy
