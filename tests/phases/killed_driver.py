"""`raysweep` as a driver that kills itself with SIGKILL at a chosen trial event (the kill tests).

    python killed_driver.py run SPEC            # or: resume EXPERIMENT

Environment: KILL_EVENTS (a file every trial event the driver handles is appended to, as JSON
lines: {"phase", "event", "trial", "epoch"}), KILL_PHASE (a label written with each event),
KILL_AT ("before:N" or "after:N": SIGKILL at the Nth event, before the sweep's own callbacks see
it or after they all have; unset: never). The killer rides in the sweep's callbacks, so Tune
pickles it with the experiment and a resumed sweep logs its events too.
"""

from __future__ import annotations

import json
import os
import signal
import sys

from ray.tune import Callback

from raysweep import cli
from raysweep.phases import sweep


class Killer(Callback):
    def __init__(self, where: str):
        self.where, self.seen = where, 0

    def _event(self, event: str, trial, epoch=None) -> None:
        with open(os.environ["KILL_EVENTS"], "a") as out:
            out.write(json.dumps({"phase": os.environ.get("KILL_PHASE", ""), "where": self.where, "event": event,
                                  "trial": trial.trial_id, "epoch": epoch}) + "\n")
        when, _, at = os.environ.get("KILL_AT", "").partition(":")
        if when != self.where:
            return
        self.seen += 1
        if self.seen == int(at):
            sys.stdout.flush()
            os.kill(os.getpid(), signal.SIGKILL)

    def on_trial_result(self, iteration, trials, trial, result, **info):
        self._event("result", trial, result.get("epoch"))

    def on_trial_complete(self, iteration, trials, trial, **info):
        self._event("complete", trial)

    def on_trial_error(self, iteration, trials, trial, **info):
        self._event("error", trial)


def with_killers(made):
    def callbacks(*args, **kwargs):
        return [Killer("before"), *made(*args, **kwargs), Killer("after")]
    return callbacks


if __name__ == "__main__":
    sweep.callbacks = with_killers(sweep.callbacks)
    cli.console()
