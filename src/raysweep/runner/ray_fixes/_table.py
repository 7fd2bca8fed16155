"""Every part of Ray that raysweep replaces, in one table: why each fix exists is in _wrappers.py,
in the same order; README.md ("Ray versions") lists them for users."""

from __future__ import annotations

from raysweep.runner import recovery
from raysweep.runner.ray_fixes import _wrappers
from raysweep.runner.ray_fixes._fix import Fix, Patch

VERIFIED_ON = ("2.60.0",)
_CONTROLLER = "ray.tune.execution.tune_controller:TuneController"

FIXES = (
    Fix("memory kills as dead actors",
        (Patch("ray.air.execution._internal.actor_manager:RayActorManager", "_actor_task_failed",
               _wrappers._memory_kills_as_dead_actors, "(self, tracked_actor_task, exception)"),),
        VERIFIED_ON, "ray/air/execution/_internal/actor_manager.py: RayActorManager._actor_task_failed",
        "a trial killed for memory stops the whole sweep", "refuse"),
    Fix("every stopped trial saved",
        (Patch(_CONTROLLER, "_schedule_trial_stop", _wrappers._every_stopped_trial_saved,
               "(self, trial, exception=None)"),),
        VERIFIED_ON, "ray/tune/execution/tune_controller.py: TuneController._schedule_trial_stop",
        "a failed trial can be saved as running, and resume runs it again", "refuse"),
    Fix("the driver's result files kept",
        (Patch("ray.tune.logger.logger:LoggerCallback", "_restore_from_remote", _wrappers._the_drivers_result_files_kept,
               "(self, file_name, trial)"),),
        VERIFIED_ON, "https://github.com/ray-project/ray/pull/38598 (ray/tune/logger/logger.py: "
        "LoggerCallback._restore_from_remote)",
        "a paused trial that starts again loses the epochs it reported since the last sync", "refuse"),
    Fix("HyperBand's finished brackets ended",
        (Patch("ray.tune.schedulers.hyperband:HyperBandScheduler", "on_trial_remove",
               _wrappers._brackets_that_removals_finish_ended, "(self, tune_controller, trial)"),),
        VERIFIED_ON, "ray/tune/schedulers/hyperband.py: HyperBandScheduler.on_trial_remove",
        "a hyperband or bohb sweep can wait forever on a paused trial", "refuse"),
    Fix("the monitor killed without a grace",
        (Patch("ray._private.node:Node", "_kill_process_impl", _wrappers._monitor_killed_without_grace,
               "(self, process_type, allow_graceful=False, check_alive=True, wait=False)"),),
        VERIFIED_ON, "ray/_private/node.py: Node._kill_process_impl",
        "shutting a local Ray down takes a second longer", "skip"),
    Fix("the next trial chosen among the live",
        (Patch(_CONTROLLER, "__init__", _wrappers._live_trials_in_creation_order,
               "(self, *, search_alg=None, placeholder_resolvers=None, scheduler=None, stopper=None, resume_config=None, "
               "fail_fast=False, checkpoint_period=None, callbacks=None, metric=None, trial_checkpoint_config=None, "
               "storage=None, reuse_actors=False, resource_manager_factory=None, _trainer_api=False)"),
         Patch(_CONTROLLER, "_requeue_trial", _wrappers._a_retried_trial_queued_last, "(self, trial)"),
         Patch("ray.tune.schedulers.trial_scheduler:FIFOScheduler", "choose_trial_to_run",
               _wrappers._next_trial_chosen_among_the_live, "(self, tune_controller)")),
        VERIFIED_ON, "https://github.com/ray-project/ray/issues/15504",
        "Tune walks every trial the sweep created on each step of its loop, slower as the sweep grows", "skip"),
    Fix("gone checkpoints deleted already",
        (Patch("ray.train._internal.checkpoint_manager", "_delete_fs_path", _wrappers._gone_checkpoints_deleted_already,
               "(fs, fs_path)"),),
        VERIFIED_ON, "ray/train/_internal/checkpoint_manager.py: _CheckpointManager.register_checkpoint",
        "a resumed trial's checkpoint handling stops on a checkpoint deleted before the kill, and the trial "
        "is left out of the next saved state", "refuse"),
    # not a bug of Ray's: how `resume` goes by raysweep's ended-trials journal (runner/recovery.py)
    Fix("resume by the trials journal",
        (Patch(_CONTROLLER, "_requeue_restored_trials", recovery.journal_read_before_requeue,
               "(self, trials, resume_config)"),
         Patch(_CONTROLLER, "add_trial", recovery.no_trial_added_twice, "(self, trial)")),
        VERIFIED_ON, "ray/tune/execution/tune_controller.py: TuneController._requeue_restored_trials, add_trial",
        "resume can run ended trials again", "refuse"),
    Fix("results left on disk",
        (Patch("ray.tune.tune", "ExperimentAnalysis", _wrappers._saved_state_instead,
               "(experiment_checkpoint_path, *, storage_filesystem=None, trials=None, default_metric=None, "
               "default_mode=None)"),
         Patch("ray.tune.impl.tuner_internal", "ExperimentAnalysis", _wrappers._saved_state_instead,
               "(experiment_checkpoint_path, *, storage_filesystem=None, trials=None, default_metric=None, "
               "default_mode=None)")),
        VERIFIED_ON, "ray/tune/analysis/experiment_analysis.py: ExperimentAnalysis._fetch_trial_dataframes",
        "the end of a sweep and the start of a resume read every trial's reports into memory", "skip"),
    Fix("the raylet's startup notice logged",
        (Patch("ray._private.worker", "print_to_stdstream", _wrappers._raylet_notices_logged, "(data, ignore_prefix)"),),
        VERIFIED_ON, "ray/_private/worker.py: print_to_stdstream",
        "the raylet's \"worker processes have been started\" notice reaches the terminal", "skip"),
)
BY_NAME = {fix.name: fix for fix in FIXES}

# Which fixes go in where (`installed`'s argument).
LOGGING = ("the raylet's startup notice logged",)   # while the experiment's log is kept (runner/logs.py)
AT_SHUTDOWN = ("the monitor killed without a grace",)   # around ray.shutdown()
# a sweep's fit, a resume's restore and fit
FOR_A_SWEEP = tuple(fix.name for fix in FIXES if fix.name not in LOGGING + AT_SHUTDOWN)
READING_RESULTS = tuple(name for name in FOR_A_SWEEP if name != "results left on disk")   # lr-find's and io-search's fit
