"""An experiment stored at a URI, worked on through a local copy of it.

`storage_path` may be a local directory or a URI (`s3://bucket/results`, `gs://...`). Tune and
Train write their state and checkpoints there themselves, from every node (`tune_location` tells
Tune where). raysweep reads and writes through a local directory: the experiment itself, or for
a URI a working copy under `~/.cache/raysweep` (`RAYSWEEP_CACHE`) that remembers its home
(`pull` fetches it, `push` uploads what raysweep wrote; `local_dir` turns a path or URI a user
gives into such a directory). So everything above this package takes a local `Path` and never
sees a URI.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pyarrow.fs as pafs

from raysweep.datasets import location
from raysweep.experiment.names import HOME_FILE, TUNE_STATE_GLOB
from raysweep.spec import SNAPSHOT_FILE, SpecError


def cache_dir() -> Path:
    return Path(os.environ.get("RAYSWEEP_CACHE", "~/.cache/raysweep")).expanduser() / "experiments"


def copy_for(home: str) -> Path:
    """Where the experiment at URI `home` is copied to on this machine (made, and marked with its home)."""
    name = home.rstrip("/").rsplit("/", 1)[-1]
    local = cache_dir() / hashlib.sha1(home.encode()).hexdigest()[:10] / name
    local.mkdir(parents=True, exist_ok=True)
    (local / HOME_FILE).write_text(home)
    return local


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
    copy = copy_for(str(path).rstrip("/"))
    return pull(copy) if fetch else copy
