"""`resume` goes by the trials journal and the trials' own checkpoints, not only by Tune's saved state.

Tune restores an experiment from its newest saved state, which may be older than the driver's
last moments: a trial that ended (finished, or stopped by its scheduler) after that save is
restored as unfinished and would run again; one started after it is missing altogether, and
the searcher, restored from the same save, proposes it again. Before Tune requeues the restored
trials (`reconcile`):

- each trial the journal holds as ended is set to how it ended, with the record Tune kept of it
  then (reports, checkpoints, failures), and its result.json and error.txt are put back where
  the driver's background copy had not brought them;
- a trial the journal holds as started or ended that the saved state lacks is rebuilt from the
  journal (pending, or ended);
- an unfinished trial may have checkpointed epochs the saved state does not list (a trial
  writes its checkpoint before the driver hears of it, and Tune saves on a schedule): it goes on
  from its newest checkpoint that is whole (training.checkpoint's manifest), and the reports
  that checkpoint carries are put back in its result.json, so that no epoch the driver had seen
  is lost, or trained again under a fresh scheduler's verdict.

Then the searcher learns what it missed (`tell_searcher`): how its trials ended, and of the
rebuilt ones (a model-based searcher counts them among its samples and holds their ids; random
and grid search propose a rebuilt trial again under the same id, and that copy is dropped).
The two hooks on Tune's controller are installed with the Ray fixes (runner/ray_fixes.py).
"""

from __future__ import annotations

import copy
import json
import logging
import weakref
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow.fs as pafs
from ray.train import Checkpoint
from ray.train._internal.checkpoint_manager import _TrainingResult
from ray.tune.experiment.trial import Trial
from ray.tune.search import ConcurrencyLimiter
from ray.tune.search.search_generator import SearchGenerator
from ray.tune.utils import flatten_dict

from raysweep import experiment
from raysweep.experiment import journal
from raysweep.runner import journal as trials_journal
from raysweep.runner.pruning import CHECKPOINT_PREFIX
from raysweep.training import checkpoint as files

log = logging.getLogger("raysweep")
ENDED = (Trial.TERMINATED, Trial.ERROR)
# Where Optuna's, HyperOpt's and BOHB's searchers keep the ids of the trials they proposed.
PROPOSED = ("_ot_trials", "_live_trial_mapping", "trial_to_params")


def _last_result(entry: dict) -> dict:
    for line in reversed(entry["results"]):
        try:
            return json.loads(line)
        except json.JSONDecodeError:
            continue
    return {}


def _rebuilt(entry: dict, storage) -> Trial:
    """A trial the saved state lacks, from Tune's own record of it in the journal (as Tune's
    `_restore_trials` makes a trial of its saved state: its record, then where it lies now)."""
    trial = Trial.from_json_state(entry["tune_state"])
    trial.restore_run_metadata(entry["tune_run_metadata"])
    moved = copy.copy(trial.storage)
    moved.storage_filesystem = storage.storage_filesystem
    moved.storage_fs_path = storage.storage_fs_path
    moved.experiment_dir_name = storage.experiment_dir_name
    trial.set_storage(moved)
    trial.init_local_path()
    return trial


def _put_back(trial: Trial, entry: dict) -> None:
    """The trial's result.json as the journal has it, where the stored copy lacks its last
    reports (the driver's background copy had not brought them), and its error.txt."""
    fs, where = trial.storage.storage_filesystem, trial.storage.trial_fs_path
    target = f"{where}/{experiment.RESULT_FILE}"
    stored = [line for line in (_read_text(fs, target) or "").splitlines() if line.strip()]
    if len(stored) < len(entry["results"]):   # the journal's is the driver's whole file
        _write_lines(fs, target, entry["results"])
    if entry["error"]:
        with fs.open_output_stream(f"{where}/{experiment.ERROR_FILE}", compression=None) as out:
            out.write(entry["error"].encode())


def _read_text(fs: pafs.FileSystem, path: str) -> str | None:
    if fs.get_file_info(path).type != pafs.FileType.File:
        return None
    with fs.open_input_stream(path, compression=None) as stream:
        return stream.readall().decode(errors="replace")


def _index(path: str) -> int:
    tail = path.rstrip("/").rsplit("_", 1)[-1]
    return int(tail) if tail.isdigit() else -1


def _whole(fs: pafs.FileSystem, path: str) -> bool:
    """Every file the checkpoint's manifest lists is there at its size (a copy the kill cut short is not)."""
    manifest = _read_text(fs, f"{path}/{files.MANIFEST_FILE}")
    if manifest is None:
        return False
    try:
        sizes = json.loads(manifest)
    except json.JSONDecodeError:
        return False
    found = fs.get_file_info([f"{path}/{name}" for name in sizes])
    return all(info.type == pafs.FileType.File and info.size == sizes[info.base_name] for info in found)


def _newest_whole(fs: pafs.FileSystem, place: str, above: int = -1) -> tuple[str, int, list[dict]] | None:
    """(path, index, reports) of the newest whole checkpoint in `place` numbered above `above`."""
    found = fs.get_file_info(pafs.FileSelector(place, allow_not_found=True))
    newer = sorted(((_index(i.path), i.path) for i in found if i.type == pafs.FileType.Directory
                    and i.base_name.startswith(CHECKPOINT_PREFIX) and _index(i.path) > above), reverse=True)
    for index, path in newer:
        if _whole(fs, path):
            return path, index, json.loads(_read_text(fs, f"{path}/{files.REPORTS_FILE}") or "[]")
    return None


def newest_checkpoint(trial: Trial) -> tuple[str, int, list[dict]] | None:
    """(path, index, reports) of the trial's newest whole checkpoint in its folder that is newer
    than the one Tune's state names; None where there is none."""
    known = trial.checkpoint
    return _newest_whole(trial.storage.storage_filesystem, trial.storage.trial_fs_path,
                         _index(known.path) if known is not None else -1)


def _go_on_from_newest(trial: Trial) -> bool:
    """Let an unfinished trial continue from its newest whole checkpoint, with its reports back;
    False where Tune's saved state names its newest already. A TorchTrainer trial's checkpoints
    are its Train run's, which Train resumes from itself: only their reports are put back."""
    found = newest_checkpoint(trial)
    if found is None:
        train_run = f"{trial.storage.experiment_fs_path}/{experiment.TRAIN_RUNS_DIR}/" \
                    f"{experiment.train_run_name(trial.trial_id)}"
        found = _newest_whole(trial.storage.storage_filesystem, train_run)
        if found is not None:
            _put_back_results(trial, _result_lines(trial, found[2]))
        return False
    path, index, reports = found
    last = reports[-1] if reports else {}
    metrics = {**last, "training_iteration": len(reports), "trial_id": trial.trial_id}
    trial.run_metadata.checkpoint_manager.register_checkpoint(
        _TrainingResult(checkpoint=Checkpoint(path, filesystem=trial.storage.storage_filesystem), metrics=metrics))
    trial.storage.current_checkpoint_index = index
    trial.run_metadata.invalidate_cache()
    _put_back_results(trial, _result_lines(trial, reports))
    log.debug("resume: trial %s goes on from %s (epoch %s), newer than Tune's saved state knew",
              trial.trial_id, Path(path).name, last.get("epoch", "?"))
    return True


def _result_lines(trial: Trial, reports: list[dict]) -> list[str]:
    """A checkpoint's reports as result.json lines (Tune's own fields, but for these, it adds in the driver)."""
    return [json.dumps({**r, "training_iteration": i + 1, "trial_id": trial.trial_id}, default=str)
            for i, r in enumerate(reports)]


def _epoch(line: str):
    try:
        epoch = json.loads(line).get("epoch")
    except json.JSONDecodeError:
        return None
    return epoch if isinstance(epoch, (int, float)) else None


def _write_lines(fs: pafs.FileSystem, target: str, lines: list[str]) -> None:
    fs.create_dir(target.rsplit("/", 1)[0], recursive=True)
    with fs.open_output_stream(target, compression=None) as out:
        out.write(("\n".join(lines) + "\n").encode())


def _put_back_results(trial: Trial, lines: list[str]) -> None:
    """Extend the trial's result.json, on its storage and in the driver's folder where that has
    one, with the lines of epochs it lacks: those after its last epoch."""
    places = [(trial.storage.storage_filesystem, f"{trial.storage.trial_fs_path}/{experiment.RESULT_FILE}")]
    if trial.local_path and Path(trial.local_path, experiment.RESULT_FILE).is_file():
        places.append((pafs.LocalFileSystem(), str(Path(trial.local_path, experiment.RESULT_FILE))))
    for fs, target in places:
        stored = [line for line in (_read_text(fs, target) or "").splitlines() if line.strip()]
        last = max((e for e in map(_epoch, stored) if e is not None), default=0)
        missing = [line for line in lines if (_epoch(line) or 0) > last]
        if missing:
            _write_lines(fs, target, stored + missing)


@dataclass
class Reconciled:
    """What `reconcile` did to the restored trials."""

    trials: list[Trial]                               # all of them, rebuilt ones last
    ended: list[Trial] = field(default_factory=list)      # restored as unfinished, ended by the journal
    rebuilt: list[Trial] = field(default_factory=list)    # missing from the saved state, made from the journal
    results: dict[str, dict] = field(default_factory=dict)   # trial id -> its last result, where it ended


def _from_entry(entry: dict, storage, status: str) -> Trial:
    trial = _rebuilt(entry, storage)
    trial.set_status(status)
    return trial


def reconcile(trials: list[Trial], ended_entries: dict[str, dict], started_entries: dict[str, dict],
              storage) -> Reconciled:
    """Restored trials made to agree with the journal. A trial it holds as ended ends with that
    status and Tune's record of that moment; one it holds as started that the saved state lacks
    is rebuilt, pending; every unfinished trial goes on from its newest whole checkpoint."""
    done = Reconciled(list(trials))
    known = {t.trial_id for t in trials}
    for trial in trials:
        entry = ended_entries.get(trial.trial_id)
        if entry is not None and trial.status not in ENDED:
            trial.restore_run_metadata(entry["tune_run_metadata"])
            trial.set_storage(trial.storage)   # its checkpoints' paths, where the experiment lies now
            trial.set_status(entry["status"])
            done.ended.append(trial)
    made = {**{k: ("started_at", e, Trial.PENDING) for k, e in started_entries.items()},
            **{k: ("ended_at", e, e["status"]) for k, e in ended_entries.items()}}
    for _, (_, entry, status) in sorted(((k, v) for k, v in made.items() if k not in known),
                                               key=lambda kv: kv[1][1].get(kv[1][0], 0.0)):
        done.rebuilt.append(_from_entry(entry, storage, status))
    for trial in done.ended + done.rebuilt:
        if trial.trial_id in ended_entries:
            done.results[trial.trial_id] = _last_result(ended_entries[trial.trial_id])
            try:
                _put_back(trial, ended_entries[trial.trial_id])
            except OSError as exc:
                log.warning("trial %s: its reports were not put back from the journal (%s)", trial.trial_id, exc)
    ahead = 0
    for trial in trials + done.rebuilt:
        if trial.status not in ENDED:
            try:
                ahead += _go_on_from_newest(trial)
            except (OSError, ValueError) as exc:
                log.warning("trial %s: its newest checkpoint was not looked for (%s: %s); it goes on from the one "
                            "Tune saved", trial.trial_id, type(exc).__name__, exc)
    if done.ended or done.rebuilt or ahead:
        log.info("resume: Tune's last saved state was behind: %d trials had ended since, %d had started, and %d go on "
                 "from checkpoints newer than it knew (the trials journal and the checkpoints' reports fill it in)",
                 len(done.ended), len(done.rebuilt), ahead)
    done.trials = trials + done.rebuilt
    return done


def _searchers(search_alg):
    """(the ConcurrencyLimiter, if any, and the searcher that proposes) of a SearchGenerator."""
    searcher = search_alg.searcher
    limiter = searcher if isinstance(searcher, ConcurrencyLimiter) else None
    return limiter, (limiter.searcher if limiter else searcher)


def _register(search_alg, trial: Trial) -> None:
    """A model-based searcher learns of a trial it proposed after the state it was restored
    from: it counts among the samples, and the searcher holds its id with the trial's own values
    (so that its reports and end reach it): Optuna through an enqueued trial it then proposes,
    BOHB in its table of proposals. HyperOpt passes over ids it does not know: the trial runs,
    and its result is left out of HyperOpt's model."""
    limiter, inner = _searchers(search_alg)
    if any(trial.trial_id in getattr(inner, name, {}) for name in PROPOSED):
        return   # its state was saved after it proposed the trial (a save caught mid-copy)
    search_alg._counter += 1   # noqa: SLF001 - how many trials it has made, as saved
    study = getattr(inner, "_ot_study", None)
    if study is not None:
        study.enqueue_trial(dict(trial.evaluated_params))
        inner.suggest(trial.trial_id)
    elif isinstance(getattr(inner, "trial_to_params", None), dict):   # TuneBOHB
        inner.trial_to_params[trial.trial_id] = dict(trial.evaluated_params)
    if limiter is not None and trial.status not in ENDED:
        limiter.live_trials.add(trial.trial_id)


def tell_searcher(search_alg, done: Reconciled) -> None:
    """The searcher (restored from the same save as the trials) learns how its trials ended and
    of the trials rebuilt. Random and grid search propose a rebuilt trial again under the same
    id: `add_trial` then drops that copy (`no_trial_added_twice`)."""
    generator = isinstance(search_alg, SearchGenerator)
    for trial in done.rebuilt if generator else ():
        try:
            _register(search_alg, trial)
        except Exception as exc:  # noqa: BLE001 - searchers' internals vary; the trial still runs or stays ended
            log.info("resume: the searcher was not told of trial %s (%s: %s)", trial.trial_id, type(exc).__name__, exc)
    told = done.ended + ([t for t in done.rebuilt if t.status in ENDED] if generator else [])
    for trial in told:
        error = trial.status == Trial.ERROR
        result = None if error else flatten_dict(done.results.get(trial.trial_id, {}))
        try:
            if trial in done.rebuilt:   # not live to a concurrency limiter: straight to the searcher
                _searchers(search_alg)[1].on_trial_complete(trial.trial_id, result=result, error=error)
            else:
                search_alg.on_trial_complete(trial.trial_id, result=result, error=error)
        except Exception as exc:  # noqa: BLE001 - a searcher that never proposed it (a save caught mid-copy)
            log.info("resume: the searcher was not told how trial %s ended (%s: %s)", trial.trial_id,
                     type(exc).__name__, exc)


def journal_read_before_requeue(requeue):
    def _requeue_restored_trials(self, trials, resume_config):
        storage = self._storage
        done = reconcile(trials, journal.read(storage.storage_filesystem, storage.experiment_fs_path, journal.ENDED),
                         journal.read(storage.storage_filesystem, storage.experiment_fs_path, journal.STARTED), storage)
        _books(self).restoring = True   # restored trials are journaled already
        try:
            requeue(self, done.trials, resume_config)
        finally:
            _books(self).restoring = False
        tell_searcher(self._search_alg, done)
    return _requeue_restored_trials


@dataclass
class _Books:
    """What `add_trial` keeps per controller: the trials by id, and whether Tune is restoring
    them. Kept beside the controller, not on it: Tune pickles the controller's attributes into
    the experiment state."""
    trials: dict = field(default_factory=dict)
    restoring: bool = False


_BOOKS: "weakref.WeakKeyDictionary[object, _Books]" = weakref.WeakKeyDictionary()


def _books(controller) -> _Books:
    return _BOOKS.setdefault(controller, _Books())


def no_trial_added_twice(add):
    """A trial id the controller has already is not added again. Random and grid search propose a
    rebuilt trial again under its id; and a searcher whose saved state reached a bucket after
    the experiment state (the driver killed mid-copy) proposes again a trial Tune restored. Two
    copies of one trial would run side by side (and the scheduler fail on the second's end)."""
    def add_trial(self, trial):
        known = _books(self).trials
        earlier = known.get(trial.trial_id)
        if earlier is not None and earlier is not trial:
            if earlier.status in ENDED:   # the searcher counts its copy live until told
                self._search_alg.on_trial_complete(trial.trial_id)
            log.info("resume: trial %s was proposed again; it runs once", trial.trial_id)
            return
        known[trial.trial_id] = trial
        add(self, trial)
        if not _books(self).restoring:
            trials_journal.record_start(trial)   # made: a resume rebuilds it even if it never started
    return add_trial
