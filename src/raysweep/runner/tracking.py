"""The spec's trackers (raysweep.tracking: MLflow, W&B, Comet) fed from Tune's events on the driver.

`TrialRuns` is one Tune callback for all of them: a trial's start opens its run with its
hyperparameters, each report logs its metrics at its epoch, its end closes the run as finished
or failed. `crown` is the step after the sweep that marks the champion in each. The trials never
import a tracker's package; only the driver does, and only for the trackers the spec names.
"""

from __future__ import annotations

import logging
from pathlib import Path

from ray.tune import Callback

from raysweep import experiment
from raysweep.datasets import location
from raysweep.spec.schema import Spec
from raysweep.tracking import TRACKERS, Runs, Where, metrics_of

log = logging.getLogger("raysweep")


def where(spec: Spec, experiment_dir: str | Path) -> Where:
    # runs are tagged with where the experiment lives (a bucket's URI, not a working copy's path)
    return Where(name=spec.name, experiment=experiment.home(Path(experiment_dir)),
                 results=location.absolute(spec.storage_path))


def open_runs(trackers: dict[str, dict], sweep: Where) -> dict[str, Runs]:
    """Each tracker named, opened (a tracker that cannot start says so here, before any trial)."""
    return {name: TRACKERS[name].open(settings, sweep) for name, settings in trackers.items()}


class TrialRuns(Callback):
    """Logs the sweep's trials to every tracker of the spec as they start, report and end.

    A tracker that fails mid-sweep (its server gone, a full disk) is dropped for the rest of the
    sweep with one warning: the trials are what the sweep is for, and the results store keeps
    every number, so no tracker's error may stop a trial or the sweep."""

    def __init__(self, spec: Spec, experiment_dir: str):
        self.trackers, self.sweep = dict(spec.tracking.trackers), where(spec, experiment_dir)
        # opened here, on the driver before any trial: a tracker that cannot start (a bad URI, no
        # key to go online with) is the one-line error the command prints
        self._runs: dict[str, Runs] | None = open_runs(self.trackers, self.sweep)

    def __getstate__(self) -> dict:
        # Tune pickles its callbacks with the experiment: the open clients stay behind, and the
        # unpickled callback (a resumed sweep's) opens its trackers again on first use
        return {**self.__dict__, "_runs": None}

    @property
    def runs(self) -> dict[str, Runs]:
        if self._runs is None:
            self._runs = {}
            for name, settings in self.trackers.items():
                try:
                    self._runs[name] = TRACKERS[name].open(settings, self.sweep)
                except Exception as exc:  # noqa: BLE001 - a resumed sweep goes on without it; say why
                    self._drop(name, exc)
        return self._runs

    def _drop(self, name: str, exc: BaseException) -> None:
        text = str(exc).strip().splitlines()
        log.warning("tracking: %s logs no more of this sweep (%s: %s); the trials go on, and the results store "
                    "holds every number", TRACKERS[name].title, type(exc).__name__, text[0] if text else "")
        if self._runs is not None:
            self._runs.pop(name, None)

    def _each(self, call) -> None:
        for name, runs in list(self.runs.items()):
            try:
                call(runs)
            except Exception as exc:  # noqa: BLE001 - see the class docstring
                self._drop(name, exc)

    def on_trial_start(self, iteration, trials, trial, **info):
        self._each(lambda runs: runs.start(trial.trial_id, dict(trial.config)))

    def on_trial_result(self, iteration, trials, trial, result, **info):
        epoch = int(result.get("epoch", result.get("training_iteration", 0)))
        metrics = metrics_of(result)
        self._each(lambda runs: runs.log(trial.trial_id, metrics, epoch))

    def on_trial_complete(self, iteration, trials, trial, **info):
        self._each(lambda runs: runs.end(trial.trial_id, failed=False))

    def on_trial_error(self, iteration, trials, trial, **info):
        self._each(lambda runs: runs.end(trial.trial_id, failed=True))

    def on_experiment_end(self, trials, **info):
        """Also after Ctrl-C: the runs of trials still running are closed (a resume reopens them)."""
        self._each(lambda runs: runs.close())
        for runs in self.runs.values():
            log.info("%s", runs.where())


def crown(spec: Spec, experiment_dir: Path, trial_id: str, checkpoint_dir: Path, record: dict) -> None:
    """After the sweep: each tracker marks the champion's run and attaches the files of its best
    checkpoint. The champion is the one `rank` and `export` name (analysis.champion), and its
    checkpoint is one that pruning keeps, so what is logged is what is exported."""
    for runs in open_runs(spec.tracking.trackers, where(spec, experiment_dir)).values():
        runs.crown(trial_id, checkpoint_dir, record)
