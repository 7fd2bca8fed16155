"""The work-arounds for Ray bugs (runner/ray_fixes.py), each on the part of Ray it mends."""

from __future__ import annotations

from types import SimpleNamespace

import pyarrow.fs
from ray.tune.logger import JsonLoggerCallback

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
