"""search/budget.py: the schedulers' rules as the plan plays them are Ray Tune's own rules, and
the plays count epochs and time as a sweep spends them."""

from __future__ import annotations

import numpy as np
import pytest
from ray.tune.schedulers import ASHAScheduler, HyperBandForBOHB, HyperBandScheduler, TrialScheduler

from raysweep.search import SCHEDULERS, budget
from raysweep.search.schedulers import ASHA, Brackets, Median, Trials


class FakeTrial:
    """What Tune's schedulers read of a trial."""

    def __init__(self, trial_id: str):
        self.trial_id = trial_id
        self.status = "RUNNING"

    def __repr__(self):
        return self.trial_id


class NoController:
    def get_live_trials(self):
        return []


class Waiting:
    """A controller with a trial waiting to start: Tune's median rule would pause for it."""

    def get_live_trials(self):
        waiting = FakeTrial("waiting")
        waiting.status = "PENDING"
        return [waiting]


def _stream(rng, trials: int, epochs: int):
    """Results as trials report them in a shuffled order: (trial, epoch, score), each trial's
    epochs in order."""
    next_epoch = {t: 1 for t in range(trials)}
    while next_epoch:
        t = int(rng.choice(list(next_epoch)))
        yield t, next_epoch[t], float(rng.normal() - 1 / np.sqrt(next_epoch[t]))
        next_epoch[t] += 1
        if next_epoch[t] > epochs:
            del next_epoch[t]


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("grace,rf,max_t", [(1, 3, 9), (2, 2, 10), (1, 4, 16)])
def test_asha_decides_as_ray_tunes_asha_scheduler(seed, grace, rf, max_t):
    ray_asha = ASHAScheduler(time_attr="epoch", metric="score", mode="max", max_t=max_t, grace_period=grace,
                             reduction_factor=rf, brackets=1)
    ours = budget.Asha(max_t, grace, rf, 1, np.random.default_rng(seed))
    trials = [FakeTrial(f"t{i}") for i in range(20)]
    for i, trial in enumerate(trials):
        ray_asha.on_trial_add(NoController(), trial)
        ours.add(i)
    stopped, decisions = set(), 0
    for t, epoch, score in _stream(np.random.default_rng(seed), len(trials), max_t):
        if t in stopped:
            continue
        theirs = ray_asha.on_trial_result(NoController(), trials[t], {"epoch": epoch, "score": score})
        mine = ours.keep_going(t, epoch, score)
        assert mine == (theirs == TrialScheduler.CONTINUE), (t, epoch)
        decisions += 1
        if not mine:
            stopped.add(t)
    assert len(stopped) == len(trials) and decisions > len(trials)   # every trial ended, some went on


@pytest.mark.parametrize("seed", range(3))
def test_the_median_rule_decides_as_ray_tunes_as_raysweep_builds_it(seed):
    """raysweep's median rule (search/schedulers.py) stops and never pauses, even with trials
    waiting; the plan's copy decides the same on every result."""
    ray_rule = SCHEDULERS["median"].build(Median(grace_period=2, min_samples_required=3), Trials(epochs=8))
    ray_rule.set_search_properties(metric="score", mode="max")
    ours = budget.MedianRule(2, 3, trials=12, max_t=8)
    trials = [FakeTrial(f"t{i}") for i in range(12)]
    for i, trial in enumerate(trials):
        ray_rule.on_trial_add(Waiting(), trial)
        ours.add(i)
    stopped, stops = set(), 0
    for t, epoch, score in _stream(np.random.default_rng(seed), len(trials), 8):
        if t in stopped:
            continue
        theirs = ray_rule.on_trial_result(Waiting(), trials[t], {"epoch": epoch, "score": score})
        assert theirs != TrialScheduler.PAUSE
        mine = ours.keep_going(t, epoch, score)
        assert mine == (theirs == TrialScheduler.CONTINUE), (t, epoch)
        if not mine:
            stopped.add(t)
            stops += 1
    assert stops > 0


def test_a_trial_that_reports_once_is_no_running_mean_before_its_end():
    rule = budget.MedianRule(1, 1, trials=3, max_t=4)
    for epoch in range(1, 5):
        assert rule.keep_going(0, epoch, 1.0)
    rule.keep_going(1, 4, 5.0)   # a model fitted once: one report, at its last epoch
    # at epoch 1 only trial 0 has a mean (1.0): 0.5 is below it. Trial 1, had it counted as a
    # mean of 0, would have made the median 0.5 and let this trial go on.
    assert not rule.keep_going(2, 1, 0.5)


@pytest.mark.parametrize("max_t,eta", [(9, 3), (27, 3), (16, 2), (10, 3)])
def test_hyperbands_brackets_are_ray_tunes_brackets(max_t, eta):
    """Bracket s of Ray's HyperBandScheduler takes _get_n0(s) trials for _get_r0(s) epochs; each
    halving keeps ceil(n/eta) for eta times the epochs, up to max_t."""
    scheduler = HyperBandScheduler(time_attr="epoch", metric="score", mode="max", max_t=max_t, reduction_factor=eta)
    sizes = [(s, scheduler._get_n0(s), scheduler._get_r0(s)) for s in range(scheduler._s_max_1)
             if scheduler._get_r0(s)]
    epochs = budget.bracket_epochs(sum(n for _, n, _ in sizes), max_t, eta)
    at = 0
    for s, n, r0 in sizes:
        members = epochs[at:at + n]
        at += n
        top = r0
        for _ in range(s):   # Ray's successive_halving: r = int(min(r * eta, max_t))
            top = int(min(top * eta, max_t))
        assert min(members) == r0 and max(members) == top
    assert at == len(epochs)


@pytest.mark.parametrize("max_t,eta", [(9, 3), (27, 3), (16, 2)])
def test_bohbs_brackets_are_filled_largest_first_as_ray_tunes(max_t, eta):
    scheduler = HyperBandForBOHB(time_attr="epoch", metric="score", mode="max", max_t=max_t, reduction_factor=eta)
    trials = [FakeTrial(f"t{i}") for i in range(3 * scheduler._get_n0(scheduler._s_max_1 - 1))]
    for trial in trials:
        scheduler.on_trial_add(NoController(), trial)
    first_bracket = scheduler._trial_info[trials[0]][0]
    n0 = first_bracket._n0
    assert n0 == scheduler._get_n0(scheduler._s_max_1 - 1) and first_bracket._r0 == 1   # the largest bracket
    epochs = budget.bracket_epochs(len(trials), max_t, eta, largest_first=True)
    assert min(epochs[:n0]) == first_bracket._r0 and max(epochs[:n0]) == max_t
    assert sum(epochs) < sum(budget.bracket_epochs(len(trials), max_t, eta))


def test_hyperband_epochs_by_hand():
    # max_t 9, eta 3: brackets of 3 trials x 9 epochs; 5 x 3 epochs, 2 of them on to 9;
    # 9 x 1 epoch, 3 of them on to 3, 1 of those on to 9
    assert sum(budget.bracket_epochs(17, 9, 3)) == 27 + (3 * 3 + 2 * 9) + (6 * 1 + 2 * 3 + 1 * 9)
    assert budget.bracket_epochs(20, 9, 3)[17:] == [9, 9, 9]   # the next band starts with its s = 0 bracket


def test_fifo_runs_every_epoch_and_the_makespan_follows_the_slots():
    timing = budget.Timing(epoch_s=1.0, trial_gap_s=0.5, slot_start_s=2.0, spread=0.0)
    played = budget.forecast(SCHEDULERS["fifo"].rule, None, trials=5, epochs=3, slots=2, timing=timing)
    assert played.epochs == played.worst_case_epochs == 15
    # slot A: trials 0, 2, 4; slot B: 1, 3; each 0.5 + 3 s, the first in each slot 2 s more
    assert played.makespan_s == pytest.approx(2.0 + 3 * 3.5)
    assert played.trial_seconds == pytest.approx(5 * 3.5 + 2 * 2.0)


def test_asha_expects_fewer_epochs_than_its_worst_case_and_is_reproducible():
    options = ASHA(grace_period=1, reduction_factor=3)
    played = budget.forecast(SCHEDULERS["asha"].rule, options, trials=27, epochs=9, slots=3, timing=None)
    assert 27 <= played.epochs_low <= played.epochs <= played.epochs_high < played.worst_case_epochs == 243
    # synchronous halving would spend 27*1 + 9*2 + 3*6 = 63 epochs; asynchronous promotes more
    assert 63 <= played.epochs <= 130
    again = budget.forecast(SCHEDULERS["asha"].rule, options, trials=27, epochs=9, slots=3, timing=None)
    assert again == played


def test_every_scheduler_has_a_rule_that_plays():
    options = {"fifo": None, "asha": ASHA(), "hyperband": Brackets(), "bohb": Brackets(), "median": Median()}
    assert set(options) == set(SCHEDULERS)
    for name, kind in SCHEDULERS.items():
        played = budget.forecast(kind.rule, options[name], trials=10, epochs=6, slots=2,
                                 timing=budget.Timing(epoch_s=0.1))
        assert 0 < played.epochs <= played.worst_case_epochs and played.makespan_s > 0


def test_a_large_sweep_is_played_once_within_seconds():
    played = budget.forecast(SCHEDULERS["asha"].rule, ASHA(grace_period=1, reduction_factor=2), trials=10_000,
                             epochs=20, slots=50, timing=budget.Timing(epoch_s=1.0))
    assert played.plays == 2 and played.epochs < 0.3 * played.worst_case_epochs
