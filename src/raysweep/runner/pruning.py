"""Delete the checkpoints of ended trials that can no longer matter (`checkpoints.keep_top`).

A trial's checkpoints (its best and last epoch's weights and optimiser state, 130 KB for a small
net, gigabytes for a large one) serve two purposes: a trial that may still train continues
from them (a retry, `raysweep resume`, HyperBand restarting a paused trial), and the trial that
wins is exported and plotted from them. Once a trial has ended, only the second remains, and only
for the best: a 10,000-trial random search kept 1.3 GB of checkpoints of trials nobody would
deploy (bench/scale.py).

So as trials end, the checkpoints of the best `keep_top` trials that did not fail (by the spec's
metric, as the champion is chosen) are kept, and the rest are deleted: those of a failed trial
(never exported) at once, and those of a trial that drops out of the top when a better one ends.
Trials that are running, pending or paused keep theirs. Deleting goes through the experiment's
storage filesystem, so it works alike for a local directory and a bucket.

Trials are ranked on their best value of the metric over their reports, NaN left out and a
re-run epoch counted once, and of equal trials the first made stays, as the leaderboard ranks
them (not on Tune's running statistics, which one NaN report spoils). A trial's checkpoints are
deleted only once its end is in the experiment's trials journal (experiment.journal), so that
`resume` never runs it on from them, and, besides, only after Tune's next two saves of its own
state (Tune asks the callbacks for theirs right after each, `get_state`) or the end of the sweep.
"""

from __future__ import annotations

import heapq
import logging
import math

import pyarrow.fs as pafs
from ray.tune import Callback

from raysweep import experiment
from raysweep.experiment import journal

log = logging.getLogger("raysweep")
CHECKPOINT_PREFIX = "checkpoint_"   # Tune's and Train's checkpoint directories alike


def checkpoint_dirs(trial) -> list[str]:
    """Where a trial's checkpoints lie on its storage: its own directory (in-trial runs report
    them to Tune) and its Train run's (a TorchTrainer's, experiment.train_run_name)."""
    fs = trial.storage.storage_filesystem
    places = (trial.storage.trial_fs_path,
              "/".join([trial.storage.experiment_fs_path, experiment.TRAIN_RUNS_DIR,
                        experiment.train_run_name(trial.trial_id)]))
    found = []
    for place in places:
        for info in fs.get_file_info(pafs.FileSelector(place, allow_not_found=True)):
            if info.type == pafs.FileType.Directory and info.base_name.startswith(CHECKPOINT_PREFIX):
                found.append(info.path)
    return found


def delete_checkpoints(trial) -> None:
    """Delete an ended trial's checkpoints, once its end is in the experiment's journal (so that
    `resume` never runs it again from them); a failure is logged (disk is not worth a sweep)."""
    try:
        if not journal.recorded(trial.storage.storage_filesystem, trial.storage.experiment_fs_path, trial.trial_id):
            return
        for path in checkpoint_dirs(trial):
            trial.storage.storage_filesystem.delete_dir(path)
    except Exception as exc:  # noqa: BLE001 - the checkpoints stay; the sweep goes on
        log.warning("checkpoints of trial %s not deleted (%s: %s)", trial.trial_id, type(exc).__name__, exc)


def best_value(reports: list[dict], metric: str, mode: str) -> float | None:
    """A trial's best `metric` over its reports (None where it reported no number)."""
    values = [r.get(metric) for r in experiment.latest_per_epoch(reports)]
    numbers = [float(v) for v in values if isinstance(v, (int, float)) and not math.isnan(v)]
    if not numbers:
        return None
    return min(numbers) if mode == "min" else max(numbers)


def creation_index(trial) -> int:
    """The order in which the searcher made the trial: Tune's experiment tags start with it."""
    head = str(trial.experiment_tag).split("_", 1)[0]
    return int(head) if head.isdigit() else 0


class CheckpointPruner(Callback):
    """Keeps the checkpoints of the best `keep_top` ended trials that did not fail, and of the
    best trial of each value of the scientific parameters (what `rank` and the report compare,
    and `export --trial` or `ensemble` may take: the best random forest of a families study)."""

    def __init__(self, metric: str, mode: str, keep_top: int, scientific: tuple[str, ...] = ()):
        self.metric, self.mode, self.keep_top, self.scientific = metric, mode, keep_top, tuple(scientific)
        self.kept: list[tuple[float, int, str]] = []   # a heap: (goodness, -order, trial id); worst first
        self.top: set[str] = set()                      # the trial ids in `kept`
        self.group_best: dict[tuple, tuple[float, int, str]] = {}   # scientific values -> best entry
        self.trials: dict[str, object] = {}            # trial id -> trial, for those kept
        self.first_step = True
        self.unsaved: list = []     # trials to delete once a save of Tune's state has them ended
        self.saved: list = []       # ... and once that save has reached the experiment

    def __getstate__(self):   # Tune pickles its callbacks before the sweep starts (tuner.pkl)
        return {"metric": self.metric, "mode": self.mode, "keep_top": self.keep_top, "scientific": self.scientific}

    def __setstate__(self, state):
        self.__init__(**state)

    def on_step_begin(self, iteration, trials, **info):
        """A resumed sweep first counts the trials its first run finished, in the order they
        ended; those that were not among the best then lost their checkpoints then."""
        if not self.first_step:
            return
        self.first_step = False
        ended = [t for t in trials if t.status == "TERMINATED"]
        for trial in sorted(ended, key=lambda t: t.run_metadata.last_result_time or 0.0):
            value = best_value(experiment.trial_reports(trial.path), self.metric, self.mode)
            if value is not None:
                self._rank(trial, value, delete=False)

    def on_trial_complete(self, iteration, trials, trial, **info):
        value = best_value(experiment.trial_reports(experiment.live_trial_dir(trial)), self.metric, self.mode)
        if value is None:   # it reported no metric: it cannot be chosen either
            self.unsaved.append(trial)
        else:
            self._rank(trial, value, delete=True)

    def on_trial_error(self, iteration, trials, trial, **info):
        self.unsaved.append(trial)   # a failed trial is never the champion

    def _rank(self, trial, value: float, delete: bool) -> None:
        goodness = -value if self.mode == "min" else value
        # of equal trials the first made stays, as the leaderboard (in Tune's order) lists it first
        entry = (goodness, -creation_index(trial), trial.trial_id)
        heapq.heappush(self.kept, entry)
        self.top.add(trial.trial_id)
        self.trials[trial.trial_id] = trial
        released = []
        if self.scientific:
            group = tuple(str(trial.config.get(name)) for name in self.scientific)
            before = self.group_best.get(group)
            if before is None or entry > before:
                self.group_best[group] = entry
                released += [before[2]] if before is not None else []
            else:
                released.append(trial.trial_id)   # not its group's best: only the top can keep it
        if len(self.kept) > self.keep_top:
            _, _, worst = heapq.heappop(self.kept)
            self.top.discard(worst)
            released.append(worst)
        bests = {e[2] for e in self.group_best.values()}
        for trial_id in dict.fromkeys(released):
            if trial_id in self.trials and trial_id not in self.top and trial_id not in bests:
                dropped = self.trials.pop(trial_id)
                if delete:
                    self.unsaved.append(dropped)

    def get_state(self):
        """Called by Tune right after each save of its state: what the save before this one
        had as ended goes now (that save has reached the experiment), this save's next time."""
        for trial in self.saved:
            delete_checkpoints(trial)
        self.saved, self.unsaved = self.unsaved, []
        return None   # nothing of the pruner's own to save

    def on_experiment_end(self, trials, **info):
        """Tune saved its final state, and waited for it, just before."""
        for trial in self.saved + self.unsaved:
            delete_checkpoints(trial)
        self.saved, self.unsaved = [], []
