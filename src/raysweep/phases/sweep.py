"""`raysweep run` and `raysweep resume`: a spec as a `tune.Tuner`, run to the end or finished later.

The experiment directory (raysweep.experiment) holds Tune's own state plus the spec as run,
which is all `resume` needs to rebuild the same trainable. While the sweep runs, callbacks
print one line per finished trial and keep the results store and TensorBoard logs current.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path
from typing import Callable

from ray import tune

from raysweep import experiment
from raysweep.analysis import champion, diagnose, forecast, leaderboard, store, timing
from raysweep.analysis.store_writer import StoreWriter
from raysweep.analysis.tensorboard import TENSORBOARD_DIR, TensorBoardWriter
from raysweep.checks import is_missing
from raysweep.experiment import journal
from raysweep.phases import capacity
from raysweep.runner import live_status, logs, ray_fixes, resources, session, storage, tracking, tuning
from raysweep.runner.ended_trials import EndedTrialTrimmer
from raysweep.runner.journal import TrialJournal
from raysweep.runner.progress import ProgressLines
from raysweep.runner.pruning import CheckpointPruner
from raysweep.runner.session import start_ray
from raysweep.runner.tracking import TrialRuns
from raysweep.runner.watchdog import StallWatchdog
from raysweep.search import searchers, space
from raysweep.spec import Spec, SpecError
from raysweep.workloads import load_workload

log = logging.getLogger("raysweep")


def run(spec: Spec, *, address: str | None = None, quiet: bool = False, dashboard: bool = False,
        on_created: Callable[[Path], None] | None = None) -> Path:
    """Run a validated spec to the end; returns the experiment's local directory (for a
    `storage_path` URI, its working copy, brought up to date). `quiet`: no live status and no
    per-trial lines (runner/live_status.py); `dashboard`: start Ray's dashboard and print its URL."""
    started = time.time()
    live_status.configure(quiet=quiet)
    storage.check_room(spec)
    experiment_dir = experiment.create(spec)
    timeline = Timeline(spec, experiment_dir, "run", started)
    if on_created:   # the Python API's background sweep learns where its results go
        on_created(experiment_dir)
    experiment.record_provenance(experiment_dir, "run")
    experiment.write_data_warnings(experiment_dir, spec)
    experiment.write_data_fingerprint(experiment_dir, spec)
    for line in spec.warnings:
        log.warning("%s", line)
    with experiment.held(experiment_dir, "run"), logs.to_experiment_log(experiment_dir):
        start_ray(address, spec, dashboard=dashboard)
        prepared = tuning.prepare(spec, experiment_dir)
        log.info("sweep %s: %d trials at most at once, each with %s; results in %s", spec.name,
                 prepared.allocation.max_concurrent, prepared.allocation.trial, experiment.home(experiment_dir))
        write_plan(spec, experiment_dir, prepared.allocation)
        timeline.trials_start(prepared.allocation)
        with ray_fixes.installed():
            _tuner(spec, prepared, experiment_dir).fit()
        timeline.trials_end()
        done = after_sweep(spec, experiment_dir)
        timeline.end()
        return done


def resume(experiment_dir: str | Path, *, address: str | None = None, quiet: bool = False,
           dashboard: bool = False) -> Path:
    """Finish an interrupted sweep (a directory or a URI): unfinished trials continue, finished
    ones are not re-run. The experiment is held (experiment.held) before a bucket's working copy
    is brought up to date, so a second resume cannot rewrite the copy a live one works in."""
    experiment_dir = experiment.local_dir(experiment_dir, fetch=False).resolve()
    if not experiment.is_copy(experiment_dir):
        experiment.load_spec(experiment_dir)   # a clear error for a folder that is no experiment
    with experiment.held(experiment_dir, "resume"):
        if experiment.is_copy(experiment_dir):
            experiment.pull(experiment_dir)
        spec = experiment.load_spec(experiment_dir)
        stored = experiment.home(experiment_dir)
        if not tune.Tuner.can_restore(stored):
            raise SpecError([f"{stored}: Tune saved no state here yet, so there is "
                             "nothing to resume; start it again with `raysweep run`."])
        ended = ended_trials(experiment_dir)
        if ended >= planned_trials(spec):
            # a driver killed after its last trial ended may not have gathered or crowned
            with logs.to_experiment_log(experiment_dir):
                after_sweep(spec, experiment_dir)
            raise NothingToResume(f"nothing to resume: all {ended} trials of {stored} have ended; "
                                  f"`raysweep rank {stored}` ranks them")
        return _resumed(spec, experiment_dir, stored, address, quiet=quiet, dashboard=dashboard)


class NothingToResume(Exception):
    """`resume` of a sweep whose every planned trial has ended."""


def ended_trials(experiment_dir: Path) -> int:
    """How many trials have ended, by Tune's saved state and the ended-trials journal."""
    saved = experiment.saved_trials(experiment_dir)
    journaled = journal.read_at(experiment.home(experiment_dir))
    ended = {t.trial_id for t in saved if t.status in store.ENDED} | set(journaled)
    return len(ended)


def _resumed(spec: Spec, experiment_dir: Path, stored: str, address: str | None, *, quiet: bool,
             dashboard: bool) -> Path:
    timeline = Timeline(spec, experiment_dir, "resume", time.time())
    live_status.configure(quiet=quiet)   # the callbacks are the first run's, unpickled by Tuner.restore
    with logs.to_experiment_log(experiment_dir):
        experiment.record_provenance(experiment_dir, "resume")
        start_ray(address, spec, dashboard=dashboard)
        prepared = tuning.prepare(spec, experiment_dir)
        timeline.trials_start(prepared.allocation)
        with ray_fixes.installed():
            tuner = tune.Tuner.restore(stored, trainable=prepared.trainable,
                                       resume_unfinished=True, resume_errored=False, restart_errored=False)
            tuner.fit()
        timeline.trials_end()
        done = after_sweep(spec, experiment_dir)
        timeline.end()
        return done


PLAN_EVENTS = 50_000   # the sweep's own plan plays fewer epochs than `raysweep plan`: well under a second


def write_plan(spec: Spec, experiment_dir: Path, allocation) -> None:
    """The plan for this sweep as it starts (analysis/forecast.py): its trials at once as Ray
    sized them, timed by the newest measurement of the same spec, if any (no probe). `rank` and
    the report set it beside what happened. A plan that cannot be made never stops the sweep."""
    try:
        trials = planned_trials(spec)
        joined = session.joined_a_cluster() and Path(resources.BOOTSTRAP_CONFIG).expanduser().is_file()
        nodes = capacity.cluster(spec, Path(resources.BOOTSTRAP_CONFIG).expanduser(), trials).nodes if joined \
            else {capacity.LOCAL_NODE: 1}
        where = forecast.Capacity(slots=max(1, min(allocation.max_concurrent, trials)),
                                  cpus_per_trial=allocation.cpus_per_trial,
                                  gpus_per_trial=capacity.gpus_per_trial(spec),
                                  nodes=nodes, where="the Ray this sweep runs on")
        measured = timing.reference(spec) or timing.from_io_search(spec)
        forecast.write(experiment_dir, forecast.predict(spec, trials, where, measured, spec.cost,
                                                        events=PLAN_EVENTS))
    except Exception as exc:   # noqa: BLE001 (a forecast is advice; the sweep goes on without it)
        log.warning("no plan for this sweep (%s: %s); rank will show no predicted against actual",
                    type(exc).__name__, exc)


class Timeline:
    """When this run or resume started, ran its trials and ended (analysis/timing.py): written as
    the trials start and again at the end, so a killed run leaves an entry without an end. A
    timeline that cannot be written is a warning, never the sweep's end."""

    def __init__(self, spec: Spec, experiment_dir: Path, event: str, started: float):
        self.experiment_dir = experiment_dir
        self.entry = {"event": event, "started": started, "signature": timing.signature(spec)}

    def trials_start(self, allocation) -> None:
        self.entry.update(trials_started=time.time(), slots=allocation.max_concurrent)
        self._write()

    def trials_end(self) -> None:
        self.entry["trials_ended"] = time.time()

    def end(self) -> None:
        self.entry["ended"] = time.time()
        self._write()

    def _write(self) -> None:
        try:
            timing.record(self.experiment_dir, self.entry)
        except Exception as exc:   # noqa: BLE001 (a storage error; the trials' results are safe)
            log.warning("the sweep's timeline was not written (%s: %s); rank will show no wall time",
                        type(exc).__name__, exc)


def after_sweep(spec: Spec, experiment_dir: Path) -> Path:
    """The steps after the trials: gather an experiment stored at a URI, crown the MLflow
    champion (once every planned trial has ended: not after Ctrl-C). The trials have run, so a
    step that fails says so and the sweep still ends as its trials did: the store rebuilds on
    the next `rank`, and `export` finds the champion."""
    steps = [("gathering the results", lambda: gather(experiment_dir))]
    if spec.tracking.trackers and ended_trials(experiment_dir) >= planned_trials(spec):
        names = " and ".join(tracking.TRACKERS[name].title for name in spec.tracking.trackers)
        steps.append((f"logging the champion to {names}", lambda: crown_champion(spec, experiment_dir)))
    for what, step in steps:
        try:
            step()
        except Exception as exc:  # noqa: BLE001 - what the trials did is on storage; say it and go on
            log.warning("after the sweep: %s failed (%s: %s); the trials' results are kept, and `raysweep rank` "
                        "reads them", what, type(exc).__name__, str(exc).splitlines()[0] if str(exc) else "")
    return experiment_dir


def crown_champion(spec: Spec, experiment_dir: Path) -> None:
    """The champion `rank` and `export` name is marked in each tracker, with its checkpoint's files;
    once (CROWNED_FILE): a `resume` of a finished sweep does not log the same files again."""
    best = champion.select(experiment_dir)
    crowned = {"trial": best.trial, "trackers": sorted(spec.tracking.trackers)}
    marker = Path(experiment_dir) / CROWNED_FILE
    if marker.is_file() and json.loads(marker.read_text()) == crowned:
        return
    tracking.crown(spec, experiment_dir, best.trial, champion.best_checkpoint_dir(experiment_dir, best),
                   {"metric": best.metric, "value": best.value})
    marker.write_text(json.dumps(crowned))
    experiment.push(experiment_dir, [CROWNED_FILE])


CROWNED_FILE = "tracked_champion.json"   # the champion the trackers were last told of


def gather(experiment_dir: Path) -> Path:
    """For an experiment stored at a URI: fetch what Tune wrote there from every node, build
    the results store, and upload it with the TensorBoard logs. A local one is complete already."""
    if experiment.is_copy(experiment_dir):
        experiment.pull(experiment_dir)
        store.load(experiment_dir)
        experiment.push(experiment_dir, [store.TRIALS_FILE, store.CURVES_FILE, TENSORBOARD_DIR, logs.LOG_FILE,
                                         experiment.STALLED_FILE])
    return experiment_dir


def _tuner(spec: Spec, prepared: tuning.Prepared, experiment_dir: Path) -> tune.Tuner:
    points = warm_start_points(spec)
    plan = tuning.searcher(spec, max_concurrent=prepared.allocation.max_concurrent, points=points)
    storage, name = experiment.tune_location(experiment_dir)
    return tune.Tuner(
        prepared.trainable,
        param_space=plan.param_space,
        tune_config=tune.TuneConfig(
            metric=spec.metric, mode=spec.mode, search_alg=plan.searcher,
            scheduler=tuning.scheduler(spec), num_samples=plan.num_samples, reuse_actors=True),
        run_config=tune.RunConfig(
            name=name, storage_path=storage,
            checkpoint_config=tune.CheckpointConfig(
                num_to_keep=2, checkpoint_score_attribute=spec.metric, checkpoint_score_order=spec.mode),
            failure_config=tune.FailureConfig(max_failures=spec.failure.max_retries),
            callbacks=callbacks(spec, experiment_dir, points),
            verbose=0),
    )


def callbacks(spec: Spec, experiment_dir: Path, points: list[dict]) -> list[tune.Callback]:
    """What the driver does as trials report and end, in the order it does it. Tune pickles them
    with the experiment (tuner.pkl), so a resumed sweep runs the same ones.

    The journal comes first: a trial's end is on the experiment's storage before anything
    prints it or acts on it (deleting checkpoints, crowning a champion)."""
    progress = ProgressLines(metric=spec.metric, mode=spec.mode, params=spec.params,
                             total=searchers.planned_trials(spec.search.algorithm, spec.params,
                                                            spec.search.num_samples, points),
                             planned_epochs=spec.epochs, experiment_dir=str(experiment_dir))
    # The store is kept current from the driver's copy of each trial's files, which it has
    # for an experiment stored at a URI too (the working copy's store is uploaded by `gather`).
    found = [TrialJournal(), progress, StoreWriter(str(experiment_dir))]
    if spec.failure.stall_timeout_s:
        found.append(StallWatchdog(str(experiment_dir), spec.failure.stall_timeout_s))
    if spec.checkpoints.keep_top is not None:
        # With several objectives or constraints any trial that did not fail may be the one
        # `export --pick` takes from the front: only the failed trials' checkpoints go.
        keep = sys.maxsize if spec.multi_objective or spec.constraints else spec.checkpoints.keep_top
        found.append(CheckpointPruner(spec.metric, spec.mode, keep, tuple(spec.scientific)))
    if spec.tracking.trackers:
        found.append(TrialRuns(spec, str(experiment_dir)))
    return [*found, TensorBoardWriter(str(experiment_dir), spec.params, load_workload(spec.workload).METRICS),
            EndedTrialTrimmer(spec.metric)]


def outcome(experiment_dir: Path, table=None) -> str:
    """How a sweep ended: "interrupted" (trials unfinished, or planned and not started: Ctrl-C
    between one trial's end and the next one's creation leaves none unfinished), "all failed",
    or "finished"; what the commands' exit codes and the Python API's `Results.status` say."""
    table = leaderboard.leaderboard(experiment_dir) if table is None else table
    unfinished = int((table["status"] == "unfinished").sum()) if len(table) else 0
    if unfinished or planned_trials(experiment.load_spec(experiment_dir)) > len(table):
        return "interrupted"
    return "all failed" if diagnose.all_failed(table) else "finished"


def planned_trials(spec: Spec) -> int:
    """How many trials the sweep runs in all (what its progress lines count to)."""
    return searchers.planned_trials(spec.search.algorithm, spec.params, spec.search.num_samples,
                                    warm_start_points(spec, quiet=True))


def warm_start_points(spec: Spec, quiet: bool = False) -> list[dict]:
    """The spec's given points, then the best trials of `search.warm_start.experiment`.

    They replace the first samples of `num_samples` (Tune's rule). An earlier trial's values
    outside the current space are dropped with a log line rather than failing the sweep.
    """
    points = [dict(p) for p in spec.search.points_to_evaluate]
    warm = spec.search.warm_start
    if warm is None:
        return points
    table = leaderboard.leaderboard(experiment.local_dir(warm.experiment), metric=spec.metric, mode=spec.mode)
    table = table[~table["status"].isin(diagnose.FAILED_STATUSES)].dropna(subset=[f"best_{spec.metric}"])
    for _, row in table.head(warm.top).iterrows():
        point = {name: row[name] for name in spec.tuned if name in row and not is_missing(row[name])}
        problems = []
        space.check_point(point, list(spec.params), "point", lambda key, msg, found=problems: found.append(f"{key}: {msg}"))
        if problems:
            if not quiet:
                log.warning("warm start: skipping trial %s of %s: %s", row["trial"], warm.experiment, "; ".join(problems))
        else:
            points.append(point)
    if not quiet:
        log.info("warm start: %d points evaluated first (%d from %s)", len(points),
                 len(points) - len(spec.search.points_to_evaluate), warm.experiment)
    return points
