"""The experiment directory: where a run's spec, provenance, Tune state and checkpoints live.

    storage_path/<name>[-<phase>]-<timestamp>/
        raysweep_spec.yaml    the validated spec as run (overrides applied, paths absolute):
                              all `raysweep resume`, `rank`, `report` and `export` need
        provenance.json       who ran what, when, with which versions (one entry per run/resume)
        <trial dirs>/         Tune's own: params, results, checkpoints of in-trial runs
        train_runs/           checkpoints of TorchTrainer trials, one Train run per trial
        trials.parquet, curves.parquet, leaderboard.*, plots/, report.html   (raysweep.analysis)

This module creates the directory and owns raysweep's own files in it: the spec snapshot (its
name, `spec.SNAPSHOT_FILE`, sits with the spec, which checks a warm start's experiment for it),
provenance, and where a trial's checkpoints are. The analysis writes its files beside them;
Tune's own state is read through Tune's `ExperimentAnalysis`.
"""

from __future__ import annotations

import json
import platform
import shlex
import sys
import time
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

import yaml

from raysweep import __version__
from raysweep.datasets import location
from raysweep.spec import SNAPSHOT_FILE, Spec, SpecError, load

PROVENANCE_FILE = "provenance.json"
TRAIN_RUNS_DIR = "train_runs"   # TorchTrainer trials keep their checkpoints here


def snapshot(spec: Spec) -> dict:
    """The spec as run: overrides applied, data and storage paths made absolute."""
    raw = dict(spec.raw)
    raw["data"] = {**raw.get("data", {}), "path": location.absolute(spec.data.path)}
    raw["storage_path"] = str(Path(spec.storage_path).expanduser().resolve())
    if spec.search.warm_start:
        raw["search"] = {**raw["search"], "warm_start": {
            **raw["search"]["warm_start"], "experiment": str(Path(spec.search.warm_start.experiment).resolve())}}
    return raw


def create(spec: Spec, phase: str = "") -> Path:
    """`storage_path/<name>[-phase]-<timestamp>/` with the spec snapshot written into it."""
    storage = Path(spec.storage_path).expanduser().resolve()
    stem = f"{spec.name}-{phase}" if phase else spec.name
    experiment_dir = storage / f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}"
    while experiment_dir.exists():  # two sweeps started within one second
        experiment_dir = experiment_dir.with_name(experiment_dir.name + "x")
    experiment_dir.mkdir(parents=True)
    (experiment_dir / SNAPSHOT_FILE).write_text(
        f"# {spec.source} as run by raysweep\n" + yaml.safe_dump(snapshot(spec), sort_keys=False))
    return experiment_dir


def load_spec(experiment_dir: str | Path) -> Spec:
    """The spec an experiment ran; a SpecError for a directory that is not an experiment."""
    experiment_dir = Path(experiment_dir)
    path = experiment_dir / SNAPSHOT_FILE
    if not path.is_file():
        raise SpecError([f"{experiment_dir}: not a raysweep experiment directory "
                         f"({SNAPSHOT_FILE} is missing)"])
    return load(path)


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


def read_provenance(experiment_dir: Path) -> list[dict]:
    path = Path(experiment_dir) / PROVENANCE_FILE
    return json.loads(path.read_text()) if path.is_file() else []


def train_run_name(trial_id: str) -> str:
    """The Train run a TorchTrainer trial drives: named after the trial, so a retried or
    resumed trial finds its own checkpoints."""
    return f"train-{trial_id}"


def checkpoint_dir(experiment_dir: Path, trial) -> Path | None:
    """A Tune trial's latest checkpoint directory, under either executor.

    In-trial runs report their checkpoints to Tune. A TorchTrainer's checkpoints stay with its
    Train run (`train_runs/train-<trial id>/checkpoint_<timestamp>`; Tune sees only metrics).
    """
    if trial.checkpoint is not None:
        return Path(trial.checkpoint.path)
    run = Path(experiment_dir) / TRAIN_RUNS_DIR / train_run_name(trial.trial_id)
    runs = sorted(p for p in run.glob("checkpoint_*") if p.is_dir())
    return runs[-1] if runs else None
