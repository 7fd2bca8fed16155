"""Stop trials that stall: no report for `failure.stall_timeout_s` seconds.

A trial can hang without failing: Ray Data waiting for CPUs that never free, a collective
waiting for a worker that is gone, a read from storage that never returns. Tune waits for it
forever. This callback, on every step of Tune's loop, ends the actor of any running trial that
has reported nothing for the timeout (counted from its start or its last report). Tune then
sees the trial fail (and retries it where `failure.max_retries` allows); the trial's id and
the reason go to `EXPERIMENT_DIR/stalled.json` (experiment.py), from which the results store marks it
"stalled".
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import ray
from ray.tune import Callback

from raysweep.experiment import STALLED_FILE, stalled_trials

log = logging.getLogger("raysweep")


class StallWatchdog(Callback):
    def __init__(self, experiment_dir: str, timeout_s: float):
        self.experiment_dir, self.timeout_s = str(experiment_dir), float(timeout_s)
        self.last_heard: dict[str, float] = {}
        self.started: dict[str, object] = {}   # trial id -> trial, from its start to its end

    def on_trial_start(self, iteration, trials, trial, **info):
        self.last_heard[trial.trial_id] = time.monotonic()
        self.started[trial.trial_id] = trial

    def on_trial_result(self, iteration, trials, trial, result, **info):
        self.last_heard[trial.trial_id] = time.monotonic()

    def on_trial_complete(self, iteration, trials, trial, **info):
        self._forget(trial)

    def on_trial_error(self, iteration, trials, trial, **info):
        self._forget(trial)

    def _forget(self, trial) -> None:
        self.last_heard.pop(trial.trial_id, None)
        self.started.pop(trial.trial_id, None)

    def on_step_begin(self, iteration, trials, **info):
        """Looks at the trials started and not ended: Tune's loop steps many times a second,
        and a walk over every trial of the sweep would cost more with every trial run."""
        now = time.monotonic()
        for trial in list(self.started.values()):
            heard = self.last_heard.get(trial.trial_id)
            if trial.status != "RUNNING" or heard is None or now - heard < self.timeout_s:
                continue
            actor = trial.temporary_state.ray_actor
            if actor is None:
                continue
            reason = f"stalled: no report for {now - heard:.0f} s (failure.stall_timeout_s {self.timeout_s:g})"
            self._record(trial.trial_id, {"reason": reason, "attempt": trial.num_failures + 1})
            log.info("trial %s %s; stopping it", trial.trial_id, reason)   # progress.py tells the console
            self.last_heard.pop(trial.trial_id)
            ray.kill(actor, no_restart=True)

    def _record(self, trial_id: str, entry: dict) -> None:
        stalled = stalled_trials(self.experiment_dir)
        stalled[trial_id] = entry
        path = Path(self.experiment_dir) / STALLED_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(stalled, indent=2))
        tmp.replace(path)

    def __getstate__(self):   # Tune pickles its callbacks with the experiment state
        return {"experiment_dir": self.experiment_dir, "timeout_s": self.timeout_s, "last_heard": {}, "started": {}}
