"""The ended-trials journal: a trial's end, on the experiment's storage before anything acts on it.

Tune saves which trials have ended in its experiment state, on a schedule (every 10 s or more),
and copies the driver's folder to the experiment (a folder, or a bucket) in the background. A
driver killed between a trial's end and the next copy leaves a state in which the trial still
runs: `resume` ran it again to its last epoch (a scheduler's stop undone), and the reports it
made since the last copy were gone with the driver's folder.

So when a trial ends, the driver first writes one small file for it straight to the experiment's
storage, `ended_trials/<trial id>.json.gz`: how it ended (Tune's status), every report it made,
its error, and Tune's own record of the trial. Only then is its line printed, its checkpoints
pruned or its run crowned. When a trial is made, and again when it starts (with its folder),
`started_trials/<trial id>.json.gz` records Tune's record of it, so that a trial made after
Tune's last save is not lost either. One file
per trial and event costs the 10,000th trial what it cost the first. `resume` goes by them
(runner/recovery.py): a trial the journal holds as ended stays ended, with its reports, and one
it holds as started goes on from its own checkpoints.
"""

from __future__ import annotations

import gzip
import json
import logging

import pyarrow.fs as pafs

from raysweep.datasets import location

log = logging.getLogger("raysweep")
ENDED, STARTED = "ended", "started"
DIRS = {ENDED: "ended_trials", STARTED: "started_trials"}
SUFFIX = ".json.gz"


def _path(experiment_fs_path: str, trial_id: str, kind: str) -> str:
    return f"{experiment_fs_path.rstrip('/')}/{DIRS[kind]}/{trial_id}{SUFFIX}"


def write(filesystem: pafs.FileSystem, experiment_fs_path: str, entry: dict, kind: str = ENDED) -> None:
    """Record a trial's end (or start) (`entry["trial_id"]`); a reader sees the whole entry or
    none of it (a local file is written aside and renamed; an object in a bucket appears whole)."""
    path = _path(experiment_fs_path, entry["trial_id"], kind)
    data = gzip.compress(json.dumps(entry, default=str).encode(), compresslevel=5)
    filesystem.create_dir(path.rsplit("/", 1)[0], recursive=True)
    local = isinstance(filesystem, pafs.LocalFileSystem)
    target = f"{path}.tmp" if local else path
    with filesystem.open_output_stream(target, compression=None) as out:
        out.write(data)
    if local:
        filesystem.move(target, path)


def recorded(filesystem: pafs.FileSystem, experiment_fs_path: str, trial_id: str, kind: str = ENDED) -> bool:
    """Is the trial's end (or start) in the journal?"""
    return filesystem.get_file_info(_path(experiment_fs_path, trial_id, kind)).type == pafs.FileType.File


def read(filesystem: pafs.FileSystem, experiment_fs_path: str, kind: str = ENDED) -> dict[str, dict]:
    """Trial id -> its entry, for every trial the journal holds as ended (or started); an entry
    that does not read is left out with a log line: that trial goes by Tune's saved state."""
    selector = pafs.FileSelector(f"{experiment_fs_path.rstrip('/')}/{DIRS[kind]}", allow_not_found=True)
    entries = {}
    for info in filesystem.get_file_info(selector):
        if info.type != pafs.FileType.File or not info.base_name.endswith(SUFFIX):
            continue
        try:
            with filesystem.open_input_stream(info.path, compression=None) as stream:
                entry = json.loads(gzip.decompress(stream.readall()))
            entries[entry["trial_id"]] = entry
        except (OSError, ValueError, KeyError) as exc:
            log.warning("trials journal: %s does not read (%s: %s); skipped", info.path, type(exc).__name__, exc)
    return entries


def read_at(experiment: str) -> dict[str, dict]:
    """The journal of the experiment at a local directory or a URI."""
    if location.is_uri(experiment):
        filesystem, inner = pafs.FileSystem.from_uri(experiment)
        return read(filesystem, inner)
    return read(pafs.LocalFileSystem(), str(experiment))
