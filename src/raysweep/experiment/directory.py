"""Making an experiment directory, with the spec as run in it, and reading that spec back.

The snapshot (`spec.SNAPSHOT_FILE`) is what makes a directory a raysweep experiment: `resume`,
`rank`, `report` and `export` need nothing else of the run, so it holds the validated spec with
the overrides applied and every path made absolute (the commands may run from elsewhere).
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from pathlib import Path

import yaml

from raysweep.datasets import location
from raysweep.errors import UserError
from raysweep.experiment.provenance import read_provenance
from raysweep.experiment.working_copy import copy_for, push
from raysweep.spec import SNAPSHOT_FILE, Spec, SpecError, load


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
        local = copy_for(home) if location.is_uri(home) else Path(home)
        local.mkdir(parents=True, exist_ok=True)
        (local / SNAPSHOT_FILE).write_text(
            f"# {spec.source} as run by raysweep\n" + yaml.safe_dump(snapshot(spec), sort_keys=False))
        push(local, [SNAPSHOT_FILE])
    except OSError as exc:   # not a folder, no permission, a read-only disk, a bucket out of reach
        raise UserError(f"storage_path {spec.storage_path}: cannot write the experiment at {home} "
                        f"({type(exc).__name__}: {exc.strerror or exc}). Point storage_path at a folder "
                        "you can write (--set storage_path=DIR) or a bucket you can reach.") from None
    return local


def created(experiment_dir: str | Path) -> datetime:
    """When the sweep began: its first provenance entry (else the spec snapshot's time), in UTC."""
    runs = read_provenance(Path(experiment_dir))
    if runs and runs[0].get("started"):
        return datetime.fromisoformat(runs[0]["started"])
    return datetime.fromtimestamp((Path(experiment_dir) / SNAPSHOT_FILE).stat().st_mtime, timezone.utc)


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
