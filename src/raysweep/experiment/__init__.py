"""The experiment directory: where a run's spec, provenance, Tune state and checkpoints live.

    storage_path/<name>[-<phase>]-<timestamp>/
        raysweep_spec.yaml    the validated spec as run (overrides applied, paths absolute):
                              all `raysweep resume`, `rank`, `report` and `export` need
        provenance.json       who ran what, when, with which versions (one entry per run/resume)
        <trial dirs>/         Tune's own: params, results, checkpoints of in-trial runs
        train_runs/           checkpoints of TorchTrainer trials, one Train run per trial
        trials.parquet, curves.parquet, leaderboard.*, plots/, report.html   (raysweep.analysis)

`storage_path` may be a local directory or a URI (`s3://bucket/results`, `gs://...`). Tune and
Train write their state and checkpoints there themselves, from every node. raysweep reads and
writes through a local directory: the experiment itself, or for a URI a working copy under
`~/.cache/raysweep` (`RAYSWEEP_CACHE`) that remembers its home (`pull` fetches it, `push`
uploads what raysweep wrote; `local_dir` turns a path or URI a user gives into such a
directory). Everything above this module takes a local `Path`.

This module creates the directory and owns raysweep's own files in it: the spec snapshot (its
name, `spec.SNAPSHOT_FILE`, sits with the spec, which checks a warm start's experiment for it),
provenance, and where a trial's checkpoints are. The analysis writes its files beside them;
Tune's own state is read through Tune's `ExperimentAnalysis`.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import platform
import shlex
import socket
import sys
import time
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Iterator

import pandas as pd
import pyarrow.fs as pafs
import yaml
from ray.tune import ExperimentAnalysis
from ray.tune.experiment.trial import Trial

from raysweep import __version__
from raysweep.datasets import fingerprint, location
from raysweep.errors import UserError
from raysweep.spec import SNAPSHOT_FILE, Spec, SpecError, load

PROVENANCE_FILE = "provenance.json"
TRAIN_RUNS_DIR = "train_runs"   # TorchTrainer trials keep their checkpoints here
HOME_FILE = ".raysweep_home"    # in a working copy: the URI of the experiment it copies
LOCK_FILE = ".raysweep.lock"    # held by the process that runs or resumes the experiment (held())
STALLED_FILE = "stalled.json"   # trials stopped for reporting nothing too long (runner/watchdog.py)
DATA_WARNINGS_FILE = "data_warnings.json"   # what validation found the data cannot teach (datasets.teachability)
DATA_FINGERPRINT_FILE = "data_fingerprint.json"   # which val and test data the sweep ran on (datasets.fingerprint)
CHAMPION_DECISION_FILE = "champion_decision.json"  # what `raysweep champion` decided of this experiment's best trial
REPORT_FILE = "report.html"     # `raysweep report` (analysis/report.py)
PLOTS_DIR = "plots"             # `raysweep plots` (analysis/plots.py)
TUNE_STATE_GLOB = "experiment_state-*.json"   # Tune's experiment state, the truth about its trials


def cache_dir() -> Path:
    return Path(os.environ.get("RAYSWEEP_CACHE", "~/.cache/raysweep")).expanduser() / "experiments"


def snapshot(spec: Spec) -> dict:
    """The spec as run: overrides applied, data, storage and workload file paths made absolute."""
    raw = dict(spec.raw)
    raw["workload"] = spec.workload
    raw["data"] = {**raw.get("data", {}), "path": location.absolute(spec.data.path)}
    raw["storage_path"] = location.absolute(spec.storage_path)
    if spec.search.warm_start:
        raw["search"] = {**raw["search"], "warm_start": {
            **raw["search"]["warm_start"], "experiment": location.absolute(spec.search.warm_start.experiment)}}
    return raw


def _working_copy(home: str) -> Path:
    """Where the experiment at URI `home` is copied to on this machine."""
    name = home.rstrip("/").rsplit("/", 1)[-1]
    local = cache_dir() / hashlib.sha1(home.encode()).hexdigest()[:10] / name
    local.mkdir(parents=True, exist_ok=True)
    (local / HOME_FILE).write_text(home)
    return local


def create(spec: Spec, phase: str = "") -> Path:
    """`storage_path/<name>[-phase]-<timestamp>/` with the spec snapshot written into it; returns
    the local directory (for a URI, its working copy, with the snapshot already uploaded)."""
    storage = location.absolute(spec.storage_path)
    location.reach(storage, "storage_path", write=True)
    stem = f"{spec.name}-{phase}" if phase else spec.name
    home = location.join(storage, f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}")
    try:
        while location.exists(home):  # two sweeps started within one second
            home += "x"
        local = _working_copy(home) if location.is_uri(home) else Path(home)
        local.mkdir(parents=True, exist_ok=True)
        (local / SNAPSHOT_FILE).write_text(
            f"# {spec.source} as run by raysweep\n" + yaml.safe_dump(snapshot(spec), sort_keys=False))
        push(local, [SNAPSHOT_FILE])
    except OSError as exc:   # not a folder, no permission, a read-only disk, a bucket out of reach
        raise UserError(f"storage_path {spec.storage_path}: cannot write the experiment at {home} "
                        f"({type(exc).__name__}: {exc.strerror or exc}). Point storage_path at a folder "
                        "you can write (--set storage_path=DIR) or a bucket you can reach.") from None
    return local


@contextlib.contextmanager
def held(experiment_dir: Path, command: str) -> Iterator[None]:
    """This process runs the experiment: another `run` or `resume` of it is refused meanwhile.

    The lock is an flock on `EXPERIMENT_DIR/.raysweep.lock`, which the operating system releases
    when the holder ends, however it ends (SIGKILL included), so a crashed driver never leaves
    the experiment locked. It guards one machine's processes (and a shared filesystem's, where
    it supports flock); a working copy of a bucket is locked on this machine only.

    Raises:
        UserError: another live process holds the experiment, named with its pid and host.
    """
    try:
        handle = open(Path(experiment_dir) / LOCK_FILE, "a+")
    except OSError as exc:
        raise UserError(f"{experiment_dir}: cannot take its lock ({type(exc).__name__}: {exc.strerror or exc}); "
                        "a run or resume writes into the experiment, so it must be writable") from None
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise UserError(f"{experiment_dir} is being run by {holder}; wait for it to end, or stop it "
                        "(Ctrl-C), then try again") from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"raysweep {command} (pid {os.getpid()} on {socket.gethostname()}, "
                 f"since {time.strftime('%Y-%m-%d %H:%M:%S')})\n")
    handle.flush()
    try:
        yield
    finally:
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()


def write_data_warnings(experiment_dir: Path, spec: Spec) -> None:
    """Record the spec's data warnings and the metrics they leave NaN, for the store and `rank`."""
    if spec.warnings or spec.undefined_metrics:
        (Path(experiment_dir) / DATA_WARNINGS_FILE).write_text(json.dumps(
            {"warnings": list(spec.warnings), "undefined": spec.undefined_metrics}, indent=2))
        push(experiment_dir, [DATA_WARNINGS_FILE])


def write_data_fingerprint(experiment_dir: Path, spec: Spec) -> None:
    """Record which val and test data the sweep judges its trials on, as the sweep starts:
    `raysweep champion` compares experiments on the same val data, the registry on the same test.
    A loop that reads its own data.path (no meta.json, no shards raysweep knows) has none."""
    if not spec.data.read:
        return
    record = {**fingerprint.fingerprints(spec.data.path),
              "taken": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    (Path(experiment_dir) / DATA_FINGERPRINT_FILE).write_text(json.dumps(record, indent=2) + "\n")
    push(experiment_dir, [DATA_FINGERPRINT_FILE])


def data_fingerprint(experiment_dir: str | Path) -> dict | None:
    """{"val", "test", "path", "taken"} as the sweep recorded them; None for an experiment run
    before raysweep recorded one."""
    path = Path(experiment_dir) / DATA_FINGERPRINT_FILE
    return json.loads(path.read_text()) if path.is_file() else None


def champion_decision(experiment_dir: str | Path) -> dict | None:
    """The last decision `raysweep champion` (deploy/champions.py) made of this experiment's best trial."""
    path = Path(experiment_dir) / CHAMPION_DECISION_FILE
    return json.loads(path.read_text()) if path.is_file() else None


def created(experiment_dir: str | Path) -> datetime:
    """When the sweep began: its first provenance entry (else the spec snapshot's time), in UTC."""
    runs = read_provenance(Path(experiment_dir))
    if runs and runs[0].get("started"):
        return datetime.fromisoformat(runs[0]["started"])
    return datetime.fromtimestamp((Path(experiment_dir) / SNAPSHOT_FILE).stat().st_mtime, timezone.utc)


def data_warnings(experiment_dir: str | Path) -> dict:
    """{"warnings": [...], "undefined": {metric: why}} as the run recorded them (empty: none)."""
    path = Path(experiment_dir) / DATA_WARNINGS_FILE
    return json.loads(path.read_text()) if path.is_file() else {}


def stalled_trials(experiment_dir: str | Path) -> dict[str, dict]:
    """Trial id -> {"reason": why it was stopped as stalled, "attempt": the failure that made},
    for the trials the stall watchdog stopped."""
    path = Path(experiment_dir) / STALLED_FILE
    return json.loads(path.read_text()) if path.is_file() else {}


def is_copy(experiment_dir: Path) -> bool:
    """Is this directory the working copy of an experiment stored at a URI?"""
    return (Path(experiment_dir) / HOME_FILE).is_file()


def home(experiment_dir: Path) -> str:
    """Where an experiment is stored: its URI for a working copy, else the directory itself."""
    marker = Path(experiment_dir) / HOME_FILE
    return marker.read_text().strip() if marker.is_file() else str(Path(experiment_dir).resolve())


def tune_location(experiment_dir: Path) -> tuple[str, str]:
    """(storage_path, name) for Tune's RunConfig: Tune writes the experiment at its home."""
    stored = home(experiment_dir).rstrip("/")
    storage, name = stored.rsplit("/", 1)
    return storage, name


def train_runs(experiment_dir: Path) -> str:
    """Where TorchTrainer trials keep their checkpoints (Train writes them there from any node)."""
    return location.join(home(experiment_dir), TRAIN_RUNS_DIR)


def _home_fs(experiment_dir: Path) -> tuple[pafs.FileSystem, str] | None:
    stored = home(experiment_dir)
    return pafs.FileSystem.from_uri(stored) if location.is_uri(stored) else None


def pull(experiment_dir: Path) -> Path:
    """Bring a working copy up to date with its home (Tune's state, trials, checkpoints)."""
    remote = _home_fs(experiment_dir)
    if remote is not None:
        filesystem, inner = remote
        pafs.copy_files(inner, str(experiment_dir), source_filesystem=filesystem,
                        destination_filesystem=pafs.LocalFileSystem())
        # Copied files get the time of the copy, in no particular order: date Tune's state
        # last, so that whatever raysweep derived from an older state is rebuilt from it.
        for state in Path(experiment_dir).glob(TUNE_STATE_GLOB):
            os.utime(state)
    return experiment_dir


def push(experiment_dir: Path, names: list[str]) -> None:
    """Upload what raysweep wrote into a working copy (the top-level `names` that exist) to its home."""
    remote = _home_fs(experiment_dir)
    if remote is None:
        return
    filesystem, inner = remote
    for name in names:
        if (Path(experiment_dir) / name).exists():
            pafs.copy_files(str(Path(experiment_dir) / name), f"{inner}/{name}",
                            source_filesystem=pafs.LocalFileSystem(), destination_filesystem=filesystem)


def local_dir(path: str | Path, *, fetch: bool = True) -> Path:
    """A local directory for the experiment at `path`: itself, or for a URI its working copy,
    brought up to date unless `fetch` is False (the caller pulls, e.g. once it holds the lock).

    Raises:
        SpecError: where `path` holds no raysweep experiment.
    """
    if not location.is_uri(path):
        return Path(path)
    location.reach(path, "experiment", write=False)
    if not location.exists(location.join(str(path), SNAPSHOT_FILE)):
        raise SpecError([f"{path}: not a raysweep experiment ({SNAPSHOT_FILE} is missing)"])
    copy = _working_copy(str(path).rstrip("/"))
    return pull(copy) if fetch else copy


def load_spec(experiment_dir: str | Path) -> Spec:
    """The spec an experiment ran; a SpecError for a directory that is not an experiment.

    Its dataset is not checked again: ranking or reporting on a laptop must not need the data
    that the cluster trained on (export and resume read it themselves, and say so if it is gone).
    """
    experiment_dir = Path(experiment_dir)
    path = experiment_dir / SNAPSHOT_FILE
    if not path.is_file():
        raise SpecError([f"{experiment_dir}: not a raysweep experiment directory "
                         f"({SNAPSHOT_FILE} is missing)"])
    return load(path, check_data=False)


def versions() -> dict[str, str]:
    """Versions of raysweep and what it runs on, read from package metadata (nothing imported)."""
    found = {"raysweep": __version__}
    for package in ("ray", "torch", "numpy", "pyarrow"):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = "not installed"
    return {**found, "python": platform.python_version()}


def record_provenance(experiment_dir: Path, event: str) -> None:
    """Append who ran what, when and with which versions to `provenance.json` (report reads it)."""
    runs = read_provenance(experiment_dir)
    command = (shlex.join(["raysweep", *sys.argv[1:]]) if sys.argv[0].endswith("raysweep")
               else shlex.join(sys.argv))
    runs.append({"event": event, "command": command,
                 "started": datetime.now(timezone.utc).isoformat(timespec="seconds"), "versions": versions()})
    (experiment_dir / PROVENANCE_FILE).write_text(json.dumps(runs, indent=2) + "\n")
    push(experiment_dir, [PROVENANCE_FILE])


def read_provenance(experiment_dir: Path) -> list[dict]:
    path = Path(experiment_dir) / PROVENANCE_FILE
    return json.loads(path.read_text()) if path.is_file() else []


def train_run_name(trial_id: str) -> str:
    """The Train run a TorchTrainer trial drives: named after the trial, so a retried or
    resumed trial finds its own checkpoints."""
    return f"train-{trial_id}"


def trial_checkpoints(experiment_dir: Path, trial_id: str) -> list[Path]:
    """A trial's checkpoint directories, oldest first, under either executor: in its own folder
    (in-trial runs report their checkpoints to Tune) or its Train run's (a TorchTrainer's stay
    there: `train_runs/train-<trial id>/checkpoint_<n>`).

    Found by listing, not through Tune's saved state, which may be older than the checkpoints
    (a driver killed before its next save) or lack the trial (one only the journal holds)."""
    experiment_dir = Path(experiment_dir)
    places = [d for d in experiment_dir.glob(f"*_{trial_id}_*") if d.is_dir()]
    places.append(experiment_dir / TRAIN_RUNS_DIR / train_run_name(trial_id))
    found = [d for place in places for d in place.glob("checkpoint_*") if d.is_dir()]
    return sorted(found, key=lambda d: (d.name.rsplit("_", 1)[-1].zfill(12), d.stat().st_mtime))


def checkpoint_dir(experiment_dir: Path, trial_id: str) -> Path | None:
    """A trial's latest checkpoint directory, under either executor (`trial_checkpoints`)."""
    found = trial_checkpoints(experiment_dir, trial_id)
    return found[-1] if found else None


# Tune warns on every load about each trial without result files: those ended before their first
# report (an error in epoch 1, a stall, a kill), which the results store shows as such. No news.
TUNE_ANALYSIS_LOGGER = "ray.tune.analysis.experiment_analysis"


class SavedState(ExperimentAnalysis):
    """Tune's saved trials without every trial's reports, which ExperimentAnalysis reads into
    frames up front (a minute and gigabytes at 10,000 trials); who needs a trial's reports reads
    that trial's (analysis.trial_rows.history)."""

    def _fetch_trial_dataframes(self) -> dict:
        return {}


def saved_trials(experiment_dir: str | Path) -> list:
    """The trials of Tune's saved experiment state (statuses as saved, paths where the
    experiment now lies)."""
    if not any(Path(experiment_dir).glob("experiment_state-*.json")):
        return []   # a sweep that has just started: Tune saves its first state with its first trials
    logger = logging.getLogger(TUNE_ANALYSIS_LOGGER)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        return SavedState(str(Path(experiment_dir).resolve())).trials
    finally:
        logger.setLevel(level)


RESULT_FILE, PROGRESS_FILE = "result.json", "progress.csv"   # a trial's reports, as Tune writes them
ERROR_FILE = "error.txt"   # a failed trial's tracebacks, one block per failed attempt, as Tune writes them


def trial_of_record(tune_state: str, run_metadata: str):
    """A Tune trial from its own JSON record (what the trials journal keeps), for reading only."""
    trial = Trial.from_json_state(tune_state, stub=True)
    trial.restore_run_metadata(run_metadata)
    return trial


def flat(report: dict, prefix: str = "") -> dict:
    """A report with nested mappings as "outer/inner" keys (as pandas.json_normalize makes them)."""
    out = {}
    for key, value in report.items():
        if isinstance(value, dict) and value:
            out.update(flat(value, f"{prefix}{key}/"))
        else:
            out[f"{prefix}{key}"] = value
    return out


def trial_reports(trial_dir: str | Path) -> list[dict]:
    """Every report of a trial, read as Tune's ExperimentAnalysis reads it (result.json, else
    progress.csv), as plain dicts: pandas took 7 ms a trial, a fifth of a short trial's cost to
    the driver (bench/scale.py)."""
    trial_dir = Path(trial_dir)
    if (trial_dir / RESULT_FILE).is_file():
        lines = (trial_dir / RESULT_FILE).read_text().splitlines()
        return [flat(json.loads(line)) for line in lines if line.strip()]
    if (trial_dir / PROGRESS_FILE).is_file() and (trial_dir / PROGRESS_FILE).stat().st_size:
        return pd.read_csv(trial_dir / PROGRESS_FILE, dtype={"trial_id": str}).to_dict("records")
    return []


def latest_per_epoch(reports: list[dict]) -> list[dict]:
    """A resumed or retried trial re-runs the epochs after its last checkpoint: the re-run counts."""
    if not any("epoch" in r for r in reports):
        return reports
    last = {r.get("epoch"): i for i, r in enumerate(reports)}
    return [r for i, r in enumerate(reports) if last[r.get("epoch")] == i]


def live_trial_dir(trial, name: str = RESULT_FILE) -> Path:
    """Where a live trial's file `name` is current: the driver's copy, which Tune writes first
    (and copies to the experiment now and then), or, where the driver has none (a trial that a
    resumed sweep has not run again), the experiment's."""
    local = Path(trial.local_path) if trial.local_path else None
    return local if local and (local / name).is_file() else Path(trial.path)
