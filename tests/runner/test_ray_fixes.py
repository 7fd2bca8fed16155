"""The work-arounds for Ray bugs (runner/ray_fixes), each on the part of Ray it mends, and how they go in and out."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pyarrow.fs
import pytest
import ray
import tomllib
from ray.tune.logger import JsonLoggerCallback
from ray.tune.schedulers import HyperBandScheduler, TrialScheduler

from raysweep import cli
from raysweep.errors import UserError
from raysweep.experiment import SavedState
from raysweep.runner import ray_fixes

EVERY_FIX = ray_fixes.FOR_A_SWEEP + ray_fixes.AT_SHUTDOWN + ray_fixes.LOGGING


@pytest.fixture
def fixed_ray():
    """Every fix in place for the test, and Ray's own parts again after it."""
    with ray_fixes.installed(EVERY_FIX):
        yield


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


def test_a_trial_that_starts_again_keeps_the_results_its_driver_wrote(tmp_path, fixed_ray):
    """A paused trial's restart must not put the last synced (older) result.json over the driver's."""
    trial = trial_with_results(tmp_path, local_rows='{"epoch": 1}\n{"epoch": 2}\n', stored_rows='{"epoch": 1}\n')
    JsonLoggerCallback()._restore_from_remote("result.json", trial)
    assert (tmp_path / "driver/result.json").read_text() == '{"epoch": 1}\n{"epoch": 2}\n'


def test_a_driver_without_the_file_still_fetches_it_from_storage(tmp_path, fixed_ray):
    """A resumed experiment's driver has no copy yet: it takes the stored one, as Tune would."""
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


def test_a_trial_paused_at_the_last_rung_is_stopped_when_the_rest_of_its_bracket_ends_early(fixed_ray):
    """HyperBand pauses the first trial of a bracket to reach max_t until the others do; when
    they stop on their own (patience), the paused one must be ended, not left waiting forever."""
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


def test_shutting_down_kills_the_autoscaler_monitor_without_a_grace_it_spends_hanging(tmp_path, fixed_ray):
    """The monitor's SIGTERM handler talks to a GCS that is gone; it must get SIGKILL at once."""
    import subprocess
    import sys

    from ray._private import node as ray_node
    from ray._private import ray_constants
    from ray._private.services import ProcessInfo

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


@pytest.mark.slow   # starts Ray (ray_session)
def test_the_next_trial_is_chosen_among_the_live_ones_in_the_order_they_were_created(ray_session, tmp_path, fixed_ray):
    """FIFO (and ASHA) must not walk the ended trials, which grow with the sweep, to find a
    waiting one; and it must pick the one Tune would have: the first created still waiting."""
    from ray.train._internal.storage import StorageContext
    from ray.tune.execution.tune_controller import TuneController
    from ray.tune.experiment.trial import Trial as TuneTrial
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

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


@pytest.mark.slow   # a real sweep
def test_the_analysis_a_sweep_hands_back_reads_no_trials_reports(experiment):
    """tune.run's ExperimentAnalysis (which a sweep drops) must not read every trial's files;
    outside a sweep's fit (lr-find reads its results from it) it reads them as before. And the
    sweep that made `experiment` left Ray as it found it: none of raysweep's parts in it."""
    from ray.tune import tune as tune_run
    from ray.tune.impl import tuner_internal

    assert replaced_now() == []
    for module in (tune_run, tuner_internal):   # fit's result, and restore's view of the past
        with ray_fixes.installed():
            handed_back = module.ExperimentAnalysis(str(experiment))
        assert handed_back.trial_dataframes == {} and len(handed_back.trials) == 6
        assert len(module.ExperimentAnalysis(str(experiment)).trial_dataframes) == 6


# --- how the fixes go in and out ---------------------------------------------------------------

def patches():
    return [patch for fix in ray_fixes.FIXES for patch in fix.patches]


def held_now() -> list[tuple[object, bool]]:
    """What each patched attribute holds now, and whether its owner holds it itself (not inherited)."""
    return [(getattr(p.resolve_owner(), p.name), p.name in vars(p.resolve_owner())) for p in patches()]


def replaced_now() -> list[str]:
    """The patched attributes that hold a part of raysweep's now (its code, or SavedState)."""
    found = []
    for patch, (held, _) in zip(patches(), held_now()):
        code = getattr(held, "__code__", None)
        if held is SavedState or (code is not None and "/raysweep/" in code.co_filename):
            found.append(patch.where)
    return found


def test_every_fix_fits_the_ray_here_which_is_the_range_pyproject_requires():
    """The Ray the tests run on is one every fix was verified on, with every part each replaces as
    the fix expects it; and pyproject requires the range the fixes were verified on, no wider."""
    assert all(ray.__version__ in fix.verified_on for fix in ray_fixes.FIXES)
    ray_fixes.check_ray()
    for patch in patches():
        assert ray_fixes.parameters(getattr(patch.resolve_owner(), patch.name)) == patch.takes, patch.where
    pyproject = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    assert [d for d in pyproject["project"]["dependencies"] if d.startswith("ray[")] == [ray_fixes.VERIFIED_RAY]


def test_every_part_of_ray_is_its_own_again_after_the_fixes_nested_or_not():
    """Within `installed()` every patched attribute holds a replacement; one `installed()` inside
    another changes nothing, in or out; after the outer one every attribute is Ray's own object."""
    before = held_now()
    assert replaced_now() == []
    with ray_fixes.installed(EVERY_FIX):
        inside = held_now()
        assert all(now is not then for (now, _), (then, _) in zip(inside, before))
        assert len(replaced_now()) == len(patches())
        with ray_fixes.installed(EVERY_FIX), ray_fixes.installed():   # a sweep's within a notebook's
            assert all(now is then for (now, _), (then, _) in zip(held_now(), inside))
        assert all(now is then for (now, _), (then, _) in zip(held_now(), inside))
    with pytest.raises(KeyboardInterrupt), ray_fixes.installed(EVERY_FIX):
        raise KeyboardInterrupt   # a sweep stopped with Ctrl-C
    after = held_now()
    assert all(now is then and own_now == own_then for (now, own_now), (then, own_then) in zip(after, before))


def test_a_refuse_fix_that_does_not_fit_stops_the_sweep_in_one_line_and_replaces_nothing(monkeypatch):
    """A Ray whose method lost a parameter the fix passes: without the fix a failed trial can be
    saved as running and resumed again, so the sweep does not start, and the line says why."""
    from ray.tune.execution.tune_controller import TuneController

    def schedule_trial_stop(self, trial):   # another Ray's
        raise AssertionError("the sweep ran")

    monkeypatch.setattr(TuneController, "_schedule_trial_stop", schedule_trial_stop)
    before = held_now()
    with pytest.raises(UserError) as refused, ray_fixes.installed():
        raise AssertionError("the sweep ran without a fix it is not safe without")
    [line] = refused.value.lines
    assert line.startswith(f"Ray {ray.__version__}: raysweep cannot run without its fix 'every stopped trial saved' ")
    assert "(TuneController._schedule_trial_stop takes (self, trial), the fix expects (self, trial, exception=None);" in line
    assert line.endswith("pip install 'ray[default,data,train,tune]==2.60.0'")
    assert all(now is then for (now, _), (then, _) in zip(held_now(), before))
    with pytest.raises(UserError):
        ray_fixes.check_ray()   # as `start_ray` asks, before Ray starts


def test_a_skip_fix_that_does_not_fit_is_left_out_with_one_warning_and_the_others_go_in(monkeypatch, caplog):
    """FIFO's choice among live trials (three parts, one fix) only saves time: a Ray whose
    scheduler method changed runs the sweep without any of its parts, says so once, and keeps the rest."""
    from ray.tune.execution.tune_controller import TuneController
    from ray.tune.schedulers import FIFOScheduler

    def choose_trial_to_run(self, tune_controller, allow_recurse=False):   # another Ray's
        return None

    monkeypatch.setattr(FIFOScheduler, "choose_trial_to_run", choose_trial_to_run)
    init, requeue, stop = TuneController.__init__, TuneController._requeue_trial, TuneController._schedule_trial_stop
    with caplog.at_level("WARNING", logger="raysweep"), ray_fixes.installed():
        assert FIFOScheduler.choose_trial_to_run is choose_trial_to_run
        assert TuneController.__init__ is init and TuneController._requeue_trial is requeue
        assert TuneController._schedule_trial_stop is not stop   # another fix is in
    assert [r.getMessage() for r in caplog.records] == [
        f"Ray {ray.__version__}: not applying the fix 'the next trial chosen among the live' (FIFOScheduler.choose_trial_to_run "
        "takes (self, tune_controller, allow_recurse=False), the fix expects (self, tune_controller)); without it Tune "
        "walks every trial the sweep created on each step of its loop, slower as the sweep grows"]
    assert TuneController._schedule_trial_stop is stop


def test_on_a_ray_the_fixes_were_not_verified_on_skip_fixes_are_left_out_and_a_sweep_is_refused(monkeypatch, caplog):
    monkeypatch.setattr(ray, "__version__", "2.61.0")
    printing = ray._private.worker.print_to_stdstream
    with caplog.at_level("WARNING", logger="raysweep"), ray_fixes.installed(ray_fixes.LOGGING):
        assert ray._private.worker.print_to_stdstream is printing
    [warning] = [r.getMessage() for r in caplog.records]
    assert warning.startswith("Ray 2.61.0: not applying the fix 'the raylet's startup notice logged' "
                              "(verified on Ray 2.60.0 only); without it")
    with pytest.raises(UserError) as refused, ray_fixes.installed():
        raise AssertionError("the sweep ran on a Ray its fixes were not verified on")
    [line] = refused.value.lines   # every fix it cannot do without, in one line
    assert line.startswith("Ray 2.61.0: raysweep cannot run without its fixes 'memory kills as dead actors', ")
    assert "'resume by the trials journal' (verified on Ray 2.60.0 only; without them" in line
    assert "'results left on disk'" not in line   # a skip fix, and no reason to refuse


def test_raysweep_run_on_such_a_ray_says_so_in_one_line_before_anything_else(raw_spec, tmp_path, monkeypatch, capsys):
    """The command's whole output is the refusal: no warnings of fixes left out before it, no traceback."""
    from conftest import write_spec

    monkeypatch.setattr(ray, "__version__", "2.61.0")
    assert cli.main(["run", str(write_spec(tmp_path, raw_spec))]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and err.startswith("error: Ray 2.61.0: raysweep cannot run without its fixes ")
    assert replaced_now() == []


def test_a_replaced_method_a_class_inherits_is_inherited_again_after(monkeypatch):
    """A fix on a subclass's inherited method must not leave the subclass a copy of its own."""
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

    patch = ray_fixes.Patch("ray.tune.schedulers.async_hyperband:ASHAScheduler", "choose_trial_to_run",
                            lambda choose: lambda self, tune_controller: None, "(self, tune_controller)")
    fix = ray_fixes.Fix("ASHA's own choice", (patch,), (ray.__version__,), "none", "nothing", "skip")
    monkeypatch.setitem(ray_fixes.BY_NAME, fix.name, fix)
    assert "choose_trial_to_run" not in vars(ASHAScheduler)
    with ray_fixes.installed([fix.name]):
        assert ASHAScheduler.choose_trial_to_run is not FIFOScheduler.choose_trial_to_run
    assert "choose_trial_to_run" not in vars(ASHAScheduler)
