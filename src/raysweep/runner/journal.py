"""Writes the trials journal (experiment.journal) as trials start and end: the first of the
sweep's callbacks, so a trial's end is on the experiment's storage before anything prints or
acts on it.
"""

from __future__ import annotations

import logging
import time

from ray.tune import Callback

from raysweep import experiment
from raysweep.experiment import journal

log = logging.getLogger("raysweep")


def entry(trial, status: str) -> dict:
    """What the journal keeps of a trial that ended with Tune status `status`: the lines of its
    result.json as the driver wrote them (every report it handled), its error.txt, and Tune's
    own record of the trial (what `resume` rebuilds it from where Tune's saved state lacks it)."""
    results = experiment.live_trial_dir(trial) / experiment.RESULT_FILE
    lines = [line for line in results.read_text().splitlines() if line.strip()] if results.is_file() else []
    error = experiment.live_trial_dir(trial, experiment.ERROR_FILE) / experiment.ERROR_FILE
    state, run_metadata = trial.get_json_state()
    return {"trial_id": trial.trial_id, "status": status, "ended_at": time.time(),
            "trial_dir_name": trial.storage.trial_dir_name, "results": lines,
            "error": error.read_text(errors="replace") if status == "ERROR" and error.is_file() else "",
            "tune_state": state, "tune_run_metadata": run_metadata}


def record(trial, status: str) -> bool:
    """Write the trial's entry to its experiment's storage; False (and a warning) where that
    failed: the trial then goes by Tune's saved state, and keeps its checkpoints (pruning)."""
    try:
        journal.write(trial.storage.storage_filesystem, trial.storage.experiment_fs_path, entry(trial, status))
        return True
    except Exception as exc:  # noqa: BLE001 - storage errors vary by filesystem; the sweep goes on
        log.warning("trial %s: its end was not written to the experiment's journal (%s: %s); a driver killed "
                    "before Tune's next save would run it again", trial.trial_id, type(exc).__name__, exc)
        return False


def record_start(trial) -> None:
    """Write Tune's record of a trial as it starts (what `resume` rebuilds a trial Tune's saved
    state lacks from); a failure is logged."""
    state, run_metadata = trial.get_json_state()
    entry = {"trial_id": trial.trial_id, "started_at": time.time(), "trial_dir_name": trial.storage.trial_dir_name,
             "tune_state": state, "tune_run_metadata": run_metadata}
    try:
        journal.write(trial.storage.storage_filesystem, trial.storage.experiment_fs_path, entry, journal.STARTED)
    except Exception as exc:  # noqa: BLE001 - storage errors vary by filesystem; the sweep goes on
        log.warning("trial %s: its start was not written to the experiment's journal (%s: %s)", trial.trial_id,
                    type(exc).__name__, exc)


class TrialJournal(Callback):
    """Each trial's first start and its end, on the experiment's storage as they happen."""

    def __init__(self):
        self.started: set[str] = set()

    def on_trial_start(self, iteration, trials, trial, **info):
        if trial.trial_id not in self.started:   # a paused or retried trial starts again
            self.started.add(trial.trial_id)
            record_start(trial)

    def on_trial_complete(self, iteration, trials, trial, **info):
        record(trial, "TERMINATED")

    def on_trial_error(self, iteration, trials, trial, **info):
        record(trial, "ERROR")

    def __getstate__(self):   # Tune pickles its callbacks before the sweep starts (tuner.pkl)
        return {"started": set()}
