"""Let go of what Tune keeps of a trial after it has ended and nothing will read again.

Tune keeps every trial it ever ran in the driver and writes each one into every snapshot of its
experiment state. Per reported number (about twenty per epoch: the metrics and Tune's own
timings), a trial carries its running max, min, mean and last value and the windows of its
last 5 and 10 values, for statistics (`last-5-avg`) that only a running trial's stopper could
use: 17 KB of JSON per trial in every snapshot, and more as Python objects, so the driver grew by
about 80 KB a trial and passed 1 GB before 10,000 trials (bench/scale.py).

When a trial ends, only the statistics and windows of the spec's metric are kept (Tune's
`ExperimentAnalysis` ranks on them). The trial's results are in its own files and in the
results store.
"""

from __future__ import annotations

from ray.tune import Callback


def trim(trial, metric: str) -> None:
    """Drop an ended trial's statistics and windows of every number but `metric` (kept whole,
    so that Tune could go on updating them, should the trial ever report again)."""
    metadata = trial.run_metadata
    # assignments invalidate Tune's cached JSON of the trial
    metadata.metric_analysis = {k: v for k, v in metadata.metric_analysis.items() if k == metric}
    metadata.metric_n_steps = {k: v for k, v in metadata.metric_n_steps.items() if k == metric}


class EndedTrialTrimmer(Callback):
    def __init__(self, metric: str):
        self.metric = metric

    def on_trial_complete(self, iteration, trials, trial, **info):
        trim(trial, self.metric)

    def on_trial_error(self, iteration, trials, trial, **info):
        trim(trial, self.metric)
