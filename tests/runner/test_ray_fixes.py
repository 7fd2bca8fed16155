"""The work-arounds for Ray bugs (runner/ray_fixes.py), each on the part of Ray it mends."""

from __future__ import annotations

from types import SimpleNamespace

import pyarrow.fs
from ray.tune.logger import JsonLoggerCallback
from ray.tune.schedulers import HyperBandScheduler, TrialScheduler

from raysweep.runner import ray_fixes


def trial_with_results(tmp_path, local_rows: str | None, stored_rows: str) -> SimpleNamespace:
    """A trial as Tune's loggers see it: the driver's result.json and the one in storage."""
    local, stored = tmp_path / "driver", tmp_path / "storage"
    local.mkdir()
    stored.mkdir()
    if local_rows is not None:
        (local / "result.json").write_text(local_rows)
    (stored / "result.json").write_text(stored_rows)
    return SimpleNamespace(local_path=str(local), checkpoint=object(), storage=SimpleNamespace(
        trial_fs_path=str(stored), storage_filesystem=pyarrow.fs.LocalFileSystem()))


def test_a_trial_that_starts_again_keeps_the_results_its_driver_wrote(tmp_path):
    """A paused trial's restart must not put the last synced (older) result.json over the driver's."""
    ray_fixes.apply()
    trial = trial_with_results(tmp_path, local_rows='{"epoch": 1}\n{"epoch": 2}\n', stored_rows='{"epoch": 1}\n')
    JsonLoggerCallback()._restore_from_remote("result.json", trial)
    assert (tmp_path / "driver/result.json").read_text() == '{"epoch": 1}\n{"epoch": 2}\n'


def test_a_driver_without_the_file_still_fetches_it_from_storage(tmp_path):
    """A resumed experiment's driver has no copy yet: it takes the stored one, as Tune would."""
    ray_fixes.apply()
    trial = trial_with_results(tmp_path, local_rows=None, stored_rows='{"epoch": 1}\n')
    JsonLoggerCallback()._restore_from_remote("result.json", trial)
    assert (tmp_path / "driver/result.json").read_text() == '{"epoch": 1}\n'


class Trial:
    """What HyperBand reads of a trial."""

    def __init__(self, name: str):
        self.trial_id, self.status, self.is_saving = name, "RUNNING", False


class Controller:
    """What HyperBand asks of Tune's controller: here, only to stop trials."""

    def __init__(self):
        self.stopped = []

    def stop_trial(self, trial):
        self.stopped.append(trial.trial_id)
        trial.status = "TERMINATED"


def test_a_trial_paused_at_the_last_rung_is_stopped_when_the_rest_of_its_bracket_ends_early():
    """HyperBand pauses the first trial of a bracket to reach max_t until the others do; when
    they stop on their own (patience), the paused one must be ended, not left waiting forever."""
    ray_fixes.apply()
    scheduler = HyperBandScheduler(time_attr="epoch", max_t=4, reduction_factor=2, metric="loss", mode="min")
    controller, trials = Controller(), [Trial(name) for name in "abc"]
    for trial in trials:   # the first bracket: three trials, all run to max_t
        scheduler.on_trial_add(controller, trial)
    first, *others = trials
    assert scheduler.on_trial_result(controller, first, {"epoch": 4, "loss": 0.5}) == TrialScheduler.PAUSE
    first.status = "PAUSED"
    for trial in others:   # their patience ran out before epoch 4
        scheduler.on_trial_result(controller, trial, {"epoch": 2, "loss": 0.9})
        trial.status = "TERMINATED"
        scheduler.on_trial_complete(controller, trial, {"epoch": 2, "loss": 0.9})
    assert controller.stopped == ["a"]


def test_shutting_down_kills_the_autoscaler_monitor_without_a_grace_it_spends_hanging(tmp_path):
    """The monitor's SIGTERM handler talks to a GCS that is gone; it must get SIGKILL at once."""
    import subprocess
    import sys

    from ray._private import node as ray_node
    from ray._private import ray_constants
    from ray._private.services import ProcessInfo

    ray_fixes.apply()
    told = tmp_path / "got_sigterm"
    monitor = subprocess.Popen([sys.executable, "-c", (
        "import signal, time, pathlib\n"
        f"signal.signal(signal.SIGTERM, lambda *a: pathlib.Path({str(told)!r}).write_text('x'))\n"
        "print('ready', flush=True)\n"
        "time.sleep(30)\n")], stdout=subprocess.PIPE, text=True)
    assert monitor.stdout.readline().strip() == "ready"
    info = ProcessInfo(process=monitor, stdout_file=None, stderr_file=None, use_valgrind=False,
                       use_gdb=False, use_valgrind_profiler=False, use_perftools_profiler=False, use_tmux=False)
    node = SimpleNamespace(all_processes={ray_constants.PROCESS_TYPE_MONITOR: [info]})
    ray_node.Node._kill_process_impl(node, ray_constants.PROCESS_TYPE_MONITOR, allow_graceful=True, check_alive=False)
    assert monitor.wait(timeout=5) == -9 and not told.exists()


def test_the_next_trial_is_chosen_among_the_live_ones_in_the_order_they_were_created(ray_session, tmp_path):
    """FIFO (and ASHA) must not walk the ended trials, which grow with the sweep, to find a
    waiting one; and it must pick the one Tune would have: the first created still waiting."""
    from ray.train._internal.storage import StorageContext
    from ray.tune.execution.tune_controller import TuneController
    from ray.tune.experiment.trial import Trial as TuneTrial
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

    ray_fixes.apply()
    storage = StorageContext(storage_path=str(tmp_path), experiment_dir_name="fifo")
    controller = TuneController(scheduler=FIFOScheduler(), storage=storage)
    trials = [TuneTrial("trainable", config={}, storage=storage, stub=True) for _ in range(40)]
    for trial in trials:
        controller.add_trial(trial)
    for trial in trials[:30]:   # ended, as Tune ends them
        trial.set_status(TuneTrial.TERMINATED)
        controller._live_trials.discard(trial)
    trials[35].set_status(TuneTrial.PAUSED)
    ended = trials[:30]

    class EndedTrialsUntouched(list):
        def __iter__(self):
            raise AssertionError("the scheduler walked every trial, ended ones included")

    controller._trials = EndedTrialsUntouched(controller._trials)
    for scheduler in (FIFOScheduler(), ASHAScheduler(metric="loss", mode="min", max_t=4)):
        assert scheduler.choose_trial_to_run(controller._wrapped()) is trials[30]
        for trial in trials[30:]:
            if trial.status == TuneTrial.PENDING:
                trial.set_status(TuneTrial.RUNNING)
        assert scheduler.choose_trial_to_run(controller._wrapped()) is trials[35]   # paused ones next
        for trial in trials[30:]:
            trial.set_status(TuneTrial.PENDING if trial is not trials[35] else TuneTrial.PAUSED)
    assert list(controller.get_live_trials()) == trials[30:] and all(t.status == "TERMINATED" for t in ended)

    controller._trials = list(trials)   # Tune's own list again: _requeue_trial moves the trial in it
    controller._set_trial_status(trials[30], TuneTrial.RUNNING)
    controller._requeue_trial(trials[30])   # a failed trial to retry goes to the back, as in Tune
    assert controller._trials[-1] is trials[30] and list(controller.get_live_trials())[-1] is trials[30]
    assert FIFOScheduler().choose_trial_to_run(controller._wrapped()) is trials[31]


def test_the_analysis_a_sweep_hands_back_reads_no_trials_reports(experiment):
    """tune.run's ExperimentAnalysis (which a sweep drops) must not read every trial's files;
    outside a sweep's fit (lr-find reads its results from it) it reads them as before."""
    from ray.tune import tune as tune_run
    from ray.tune.impl import tuner_internal

    for module in (tune_run, tuner_internal):   # fit's result, and restore's view of the past
        with ray_fixes.results_left_on_disk():
            handed_back = module.ExperimentAnalysis(str(experiment))
        assert handed_back.trial_dataframes == {} and len(handed_back.trials) == 6
        assert len(module.ExperimentAnalysis(str(experiment)).trial_dataframes) == 6
