"""Keeps an experiment's results store current while its sweep runs, at a flat cost per trial.

A Tune callback in the driver: as each trial ends, its row and curve are made from its own
files (analysis.trial_rows) and kept; the store is written from what is kept, on a schedule,
and once more at the end, with the trials that never ended marked unfinished. Nothing here
reads another trial's files, so the 10,000th trial costs what the 10th did. Rebuilding the
whole store from Tune's files instead took 7 s at 1,500 trials, in Tune's loop, which
schedules nothing meanwhile (bench/scale.py).

A resumed sweep starts from the store its first run wrote: ended trials stay ended. What Tune
saved decides what ended: a row of a trial that Tune's state still has unfinished (the driver
was killed between the two) is dropped, and a trial Tune saved as ended that the store lacks
is read from the experiment's files at the end.

A failure is logged, never raised: the store must not take a sweep down. Where a trial's row
could not be made, the store is removed at the end, and `store.load` rebuilds it from Tune's
files.
"""

from __future__ import annotations

import logging
import time

from ray.tune import Callback

from raysweep import experiment
from raysweep.analysis import store, trial_rows

log = logging.getLogger("raysweep")


class StoreWriter(Callback):
    """Writing the tables of 10,000 trials still takes a moment, so the next write waits
    `min_interval_s`, or 20 times as long as the last one took, whichever is longer: the
    store costs the sweep at most about 5% of its time, whatever its size."""

    def __init__(self, experiment_dir: str, min_interval_s: float = 10.0, max_share: float = 0.05,
                 clock=time.monotonic):
        self.experiment_dir, self.min_interval_s, self.max_share = str(experiment_dir), min_interval_s, max_share
        self.clock = clock
        self.next_write = 0.0
        self.rows: dict[str, dict] = {}              # trial id -> row, for every trial that ended
        self.curves: dict[str, trial_rows.Curve] = {}
        self.ended_before: dict[str, str] = {}       # trial id -> status, as a resumed sweep's Tune saved it
        self.missing: set[str] = set()               # trials whose row could not be made
        self.first_step = True
        self.sweep: trial_rows.Sweep | None = None

    def __getstate__(self):   # Tune pickles its callbacks before the sweep starts (tuner.pkl)
        return {**self.__dict__, "rows": {}, "curves": {}, "ended_before": {}, "missing": set(),
                "first_step": True, "sweep": None, "clock": time.monotonic}

    def setup(self, **info):
        """A resumed sweep starts from the store its first run wrote (checked on the first step)."""
        try:
            self.rows, self.curves = store.ended_rows(store.read(self.experiment_dir))
        except Exception as exc:  # noqa: BLE001 - a store that does not read is rebuilt by load()
            log.warning("results store not read (%s: %s); `raysweep rank` rebuilds it", type(exc).__name__, exc)

    def on_step_begin(self, iteration, trials, **info):
        """Before anything runs: what Tune saved as ended (a resumed sweep) is what ended."""
        if not self.first_step:
            return
        self.first_step = False
        for trial in trials:
            if trial.status in store.ENDED:
                self.ended_before[trial.trial_id] = trial.status
            else:
                self.rows.pop(trial.trial_id, None)
                self.curves.pop(trial.trial_id, None)

    def _row(self, trial, status: str) -> tuple[dict, trial_rows.Curve | None]:
        if self.sweep is None:
            self.sweep = trial_rows.sweep_of(self.experiment_dir)
        stalled = experiment.stalled_trials(self.experiment_dir) if status == "ERROR" else {}
        reports = experiment.trial_reports(experiment.live_trial_dir(trial))
        error = trial_rows.error_text(experiment.live_trial_dir(trial, trial_rows.ERROR_FILE)) if status == "ERROR" else ""
        return trial_rows.row(self.sweep, trial, status, reports, error, stalled)

    def _add(self, trial, status: str) -> bool:
        try:
            row, curve = self._row(trial, status)
        except Exception as exc:  # noqa: BLE001 - reported; load() rebuilds the store
            log.warning("results store: trial %s not added (%s: %s)", trial.trial_id, type(exc).__name__, exc)
            self.missing.add(trial.trial_id)
            return False
        self.rows[trial.trial_id] = row
        self.missing.discard(trial.trial_id)
        if curve is not None:
            self.curves[trial.trial_id] = curve
        return True

    def _write(self, rows, curves, force: bool) -> None:
        started = self.clock()
        if not force and started < self.next_write:
            return
        try:
            # the spec is known once a trial's row was made here (a resumed sweep's kept rows
            # carry the front their last store computed)
            spec = self.sweep.spec if self.sweep is not None else None
            store.write(self.experiment_dir, store.assemble(list(rows), list(curves), spec))
        except Exception as exc:  # noqa: BLE001 - reported, and rebuilt by the next load()
            log.warning("results store not updated (%s: %s); `raysweep rank` rebuilds it", type(exc).__name__, exc)
        took = self.clock() - started
        self.next_write = started + max(self.min_interval_s, took / self.max_share)

    def on_trial_complete(self, iteration, trials, trial, **info):
        if self._add(trial, "TERMINATED"):
            self._write(self.rows.values(), self.curves.values(), force=False)

    def on_trial_error(self, iteration, trials, trial, **info):
        if self._add(trial, "ERROR"):
            self._write(self.rows.values(), self.curves.values(), force=False)

    def on_experiment_end(self, trials, **info):
        """Every trial in Tune's order. One that did not end (an interrupted sweep: Tune has
        stopped it by now, but it is unfinished, and `resume` runs it on) is unfinished."""
        for trial in trials:
            if trial.trial_id not in self.rows:
                self._add(trial, self.ended_before.get(trial.trial_id, "RUNNING"))
        if self.missing:
            store.remove(self.experiment_dir)
            return
        rows = [self.rows[t.trial_id] for t in trials]
        self._write(rows, [self.curves[t.trial_id] for t in trials if t.trial_id in self.curves], force=True)
