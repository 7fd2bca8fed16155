"""The work-arounds themselves: each takes the part of Ray it mends and returns its replacement.

Which part, on which Ray, and what a sweep does without each is in the table (_table.py).

Ray 2.60, memory: when Ray's memory monitor kills the worker of a trial (or of a trial being
started), the trial's pending call fails with `ray.exceptions.OutOfMemoryError`. Tune's actor
manager handles a dead actor (`RayActorError`) and a failed task (`RayTaskError`), and raises
on anything else: `RuntimeError: Caught unexpected exception: ... killed due to the node running
low on memory`, out of `Tuner.fit`, and the sweep is over (seen with a trial that took 6 GiB on
a node whose monitor acted at 3 GiB more than it used; tests/phases/test_failures.py). A worker
killed for memory is a dead actor, so the error is handed on as one, keeping Ray's message: the
trial alone fails, is retried where `failure.max_retries` allows, and reads "out of memory".

Ray 2.60, a dead trial's state: Tune writes a trial into its experiment state only when the
trial was marked for it, and `TuneController._schedule_trial_stop` marks it only while the
trial's actor is still tracked. When the actor's death is handled before its pending call's
failure (a killed actor with child actors, as a TorchTrainer trial the stall watchdog stops),
the trial is ERROR in the driver but RUNNING in `experiment_state-*.json`: the results store
reads it as unfinished and `resume` would run it again (tests/phases/test_failures.py). Every
stopped trial is now marked, whatever the order.

Ray 2.60, a resumed trial's results: when a paused trial starts again (hyperband and bohb pause
trials at each rung), Tune's result loggers first copy the trial's `result.json` and
`progress.csv` from the experiment's storage over the driver's own copies, which the driver
writes on every report and syncs to storage only now and then. The older copy wins, and the
epochs reported since the last sync are lost from the files the results store reads (seen as
a finished trial whose result.json held epochs 1 and 3). A driver's own copy is kept where it
has one; a driver that has none (a resumed experiment) still fetches it from storage.

Ray 2.60, HyperBand's last trial: a trial that reaches a bracket's last rung while others of
its bracket still train is paused until they get there. When those end on their own instead
(early stopping's patience ran out, an error), the bracket is finished, and
`HyperBandScheduler.on_trial_remove` processes only unfinished brackets: the paused trial is
never stopped and the sweep waits forever (seen on scikit-learn's digits with patience 5,
bench/search_efficiency.py). The paused trials of a bracket that a removal finishes are stopped,
as the bracket's own processing would have.

Ray 2.60, shutting down a local Ray: `ray.shutdown()` stops the raylet and the GCS first, then
the autoscaler's monitor with SIGTERM and a second's grace. The monitor's SIGTERM handler
reports "the autoscaler failed" to the GCS, which is gone by then, so it hangs until the grace
runs out and is killed anyway: every run and every test session waited a second for nothing
(bench/startup.py). The monitor of a Ray this driver started is killed without the grace.

Ray 2.60, choosing the next trial: `FIFOScheduler.choose_trial_to_run` (ASHA's and the median
rule's too) walks every trial the sweep ever created, twice, looking for a pending or paused
one, and Tune asks on every step of its loop: at 2,300 trials it took 22% of the driver's time
(bench/scale.py), and it grows with every trial run. Only live trials can be pending or paused,
and the controller keeps those apart, so the walk is over them; they are kept in Tune's order
(a set, in Tune): the order they were created, a retried trial moved to the end as Tune moves
it, so the trial chosen is the one Tune would choose.

Ray 2.60, a resumed trial's checkpoints: Tune keeps a trial's best `num_to_keep` checkpoints
and deletes the others as new ones come. A driver killed after such a deletion but before its
next saved state leaves a state that still lists the deleted checkpoint; the resumed trial's
next checkpoint makes Tune delete it again, the deletion raises FileNotFoundError, and Tune
logs the traceback on the console and skips the rest of its checkpoint handling (seen in the
kill tests, tests/phases/test_kill_points.py). A checkpoint that is gone is deleted already.

Ray 2.60, the end of a sweep: `tune.run` hands back an `ExperimentAnalysis` of every trial,
whose constructor reads every trial's reports into a DataFrame: 10,000 files and as many
frames in the driver at the end of a 10,000-trial sweep (bench/scale.py), which raysweep never
looks at (its results store holds them, analysis/store.py); `Tuner.restore` makes another at
the start of `raysweep resume` (a 10,000-trial resume peaked at 1.3 GB). Around a sweep's
`fit` and a resume's `restore`, neither reads any (`experiment.SavedState` in its place);
lr-find and io-search, which read their few trials' results from it, and `ExperimentAnalysis`
elsewhere are Tune's own.

Ray 2.60, the raylet's notices: the raylet's warnings reach the driver apart from logging, and Ray
prints them as it gets them (`print_to_stdstream`, looked up on each message by Ray's listener
thread). The one a sweep sets off as a matter of course, "N worker processes have been started
... 4x the maximum expected startup concurrency" (a TorchTrainer trial starts several actors, and
a 2-CPU node expects 2 at a time), goes to the "ray" logger at INFO, and so to the experiment's
log file (runner/logs.py), instead of the terminal.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pyarrow.fs as pafs
from ray._private import ray_constants
from ray.exceptions import ActorDiedError, OutOfMemoryError
from ray.tune.experiment.trial import Trial

from raysweep import experiment


class KilledForMemory(ActorDiedError):
    """A trial's worker that Ray's memory monitor killed, as the dead actor it is."""

    def __init__(self, cause: OutOfMemoryError):
        super().__init__()
        self.error_msg = f"OutOfMemoryError: {cause}"


def _memory_kills_as_dead_actors(failed):
    def actor_task_failed(self, tracked_actor_task, exception):
        if isinstance(exception, OutOfMemoryError):
            exception = KilledForMemory(exception)
        return failed(self, tracked_actor_task, exception)
    return actor_task_failed


def _every_stopped_trial_saved(stop):
    def schedule_trial_stop(self, trial, exception=None):
        stop(self, trial, exception=exception)
        self._mark_trial_to_checkpoint(trial)
    return schedule_trial_stop


def _the_drivers_result_files_kept(restore):
    def restore_unless_local(self, file_name, trial):
        if not Path(trial.local_path, file_name).is_file():
            restore(self, file_name, trial)
    return restore_unless_local


def _gone_checkpoints_deleted_already(delete):
    def delete_fs_path(fs, fs_path):
        if fs.get_file_info(fs_path).type != pafs.FileType.NotFound:
            delete(fs=fs, fs_path=fs_path)
    return delete_fs_path


def _brackets_that_removals_finish_ended(remove):
    def on_trial_remove(self, controller, trial):
        bracket, _ = self._trial_info[trial]
        remove(self, controller, trial)
        if bracket.finished():
            bracket.cleanup_full(controller)
    return on_trial_remove


def _monitor_killed_without_grace(kill):
    def kill_process(self, process_type, allow_graceful=False, check_alive=True, wait=False):
        if process_type == ray_constants.PROCESS_TYPE_MONITOR:
            allow_graceful = False
        return kill(self, process_type, allow_graceful=allow_graceful, check_alive=check_alive, wait=wait)
    return kill_process


class LiveTrials(dict):
    """The controller's live trials as a set that iterates in the order trials were added."""

    def add(self, trial) -> None:
        self[trial] = None

    def discard(self, trial) -> None:
        self.pop(trial, None)


def _live_trials_in_creation_order(init):
    def __init__(self, *args, **kwargs):
        init(self, *args, **kwargs)   # a resumed sweep's trials are added in here
        self._live_trials = LiveTrials.fromkeys(t for t in self._trials if t in self._live_trials)
    return __init__


def _a_retried_trial_queued_last(requeue):
    def _requeue_trial(self, trial):
        requeue(self, trial)
        self._live_trials.discard(trial)
        self._live_trials.add(trial)
    return _requeue_trial


def _next_trial_chosen_among_the_live(choose):
    def choose_trial_to_run(self, tune_controller):
        live = tune_controller.get_live_trials()
        for status in (Trial.PENDING, Trial.PAUSED):
            for trial in live:
                if trial.status == status:
                    return trial
        return None
    return choose_trial_to_run


def _saved_state_instead(experiment_analysis):
    """`tune.run`, and so `Tuner.fit`, hands back an analysis that read no trial's reports, and
    so does the one `Tuner.restore` makes of the experiment as it was (for `get_results`)."""
    return experiment.SavedState


# The raylet's messages to the driver that ask nothing of a raysweep user, matched anywhere.
RAYLET_NOTICES = ("worker processes have been started on node",)


def _raylet_notices_logged(printing):
    def print_to_stdstream(data, ignore_prefix):
        if data.get("pid") == "raylet" and any(n in line for line in data["lines"] for n in RAYLET_NOTICES):
            for line in data["lines"]:
                logging.getLogger("ray").info("(raylet) %s", line)
            return
        printing(data, ignore_prefix)
    return print_to_stdstream
