"""Stop trials that stall: no report for `failure.stall_timeout_s` seconds.

A trial can hang without failing: Ray Data waiting for CPUs that never free, a collective
waiting for a worker that is gone, a read from storage that never returns. Tune waits for it
forever. This callback, on every step of Tune's loop, ends the actor of any running trial that
has reported nothing for the timeout (counted from its start or its last report). Tune then
sees the trial fail (and retries it where `failure.max_retries` allows); the trial's id and
the reason go to `EXPERIMENT_DIR/stalled.json` (raysweep.experiment), from which the results store marks it
"stalled".

A TorchTrainer trial ended this way may leave its workers' placement group behind (when it is
ended while its workers start: runner/placement.py); for a while after each such end, the
watchdog releases the groups of dead controllers, so the trials after it get their CPUs.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import ray
from ray.tune import Callback

from raysweep.experiment import STALLED_FILE, stalled_trials
from raysweep.runner import placement

log = logging.getLogger("raysweep")
RELEASE_FOR_S = 60.0     # how long after a trial is stopped its orphaned placement groups are looked for
RELEASE_EVERY_S = 2.0


class StallWatchdog(Callback):
    def __init__(self, experiment_dir: str, timeout_s: float):
        self.experiment_dir, self.timeout_s = str(experiment_dir), float(timeout_s)
        self.last_heard: dict[str, float] = {}
        self.started: dict[str, object] = {}   # trial id -> trial, from its start to its end
        self.release_until = 0.0               # look for orphaned placement groups until then
        self.next_release = 0.0

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
        if now < self.release_until and now >= self.next_release:
            self.next_release = now + RELEASE_EVERY_S
            self._release()
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
            self.release_until = now + RELEASE_FOR_S

    def on_experiment_end(self, trials, **info):
        """A controller ended last may still be dying: a few looks, so none is left behind."""
        if time.monotonic() < self.release_until:
            for _ in range(3):
                self._release()
                time.sleep(RELEASE_EVERY_S)

    def _release(self) -> None:
        try:
            placement.release_orphans()
        except Exception as exc:  # noqa: BLE001 - a Ray internal read; the sweep must go on without it
            log.warning("orphaned placement groups not looked for (%s: %s)", type(exc).__name__, exc)

    def _record(self, trial_id: str, entry: dict) -> None:
        stalled = stalled_trials(self.experiment_dir)
        stalled[trial_id] = entry
        path = Path(self.experiment_dir) / STALLED_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(stalled, indent=2))
        tmp.replace(path)

    def __getstate__(self):   # Tune pickles its callbacks with the experiment state
        return {"experiment_dir": self.experiment_dir, "timeout_s": self.timeout_s, "last_heard": {}, "started": {},
                "release_until": 0.0, "next_release": 0.0}
