"""Before a sweep's first trial: is there room on its storage for the checkpoints it will keep?

A disk that fills mid-sweep fails every trial still running, at its next checkpoint, hours in.
The estimate is the baseline model's size (built on the driver: a choice's first value, a
range's middle) times what a trial keeps: two checkpoints (Tune's `num_to_keep`), each the last
epoch's weights and Adam's two moments plus the best epoch's weights, and about a megabyte of
logs and results. A model that grows with a tuned size may need more than the baseline's.
Storage at a URI (a bucket) has no free space to ask about and is not checked.
"""

from __future__ import annotations

import logging
import shutil
import traceback
from dataclasses import dataclass
from pathlib import Path

from raysweep.checks import size_text
from raysweep.datasets import location, shards
from raysweep.errors import UserError, describe_failure
from raysweep.runner.tuning import fixed_values
from raysweep.search import searchers, space
from raysweep.spec import Spec
from raysweep.trainables import kind_of
from raysweep.workloads import config_from_trial, load_workload

log = logging.getLogger("raysweep")
CHECKPOINTS_KEPT = 2              # per trial (tune.CheckpointConfig num_to_keep in phases/sweep.py)
COPIES_PER_CHECKPOINT = 4         # weights + Adam's two moments (last.pt) + the best weights (best.pt)
LOGS_PER_TRIAL = 1 << 20          # result.json, progress.csv, params, error files, TensorBoard


@dataclass(frozen=True)
class Estimate:
    trials: int
    parameters: int
    bytes_needed: int

    def __str__(self) -> str:
        per_checkpoint = self.parameters * 4 * COPIES_PER_CHECKPOINT
        return (f"about {size_text(self.bytes_needed)}: {self.trials} trials x {CHECKPOINTS_KEPT} checkpoints x "
                f"{size_text(per_checkpoint)} (a model of {self.parameters:,} parameters with its optimiser state)")


def estimate(spec: Spec, meta: dict) -> Estimate | None:
    """What the sweep's checkpoints and logs will take, from its baseline model; None where the
    workload's kind cannot tell its size before training (a model family's fitted trees)."""
    workload = load_workload(spec.workload)
    cfg = config_from_trial(workload, {**fixed_values(spec), **space.baseline(spec.params)}, spec.params)
    parameters = kind_of(workload).parameters(workload, cfg, meta)
    if parameters is None:
        return None
    trials = searchers.planned_trials(spec.search.algorithm, spec.params, spec.search.num_samples,
                                      list(spec.search.points_to_evaluate))
    per_trial = CHECKPOINTS_KEPT * COPIES_PER_CHECKPOINT * 4 * parameters + LOGS_PER_TRIAL
    return Estimate(trials, parameters, trials * per_trial)


def check_room(spec: Spec) -> Estimate | None:
    """Refuse a sweep whose checkpoints would not fit the free space of its storage.

    Raises:
        UserError: the estimate exceeds the free space, with both figures and the fixes.
    """
    if location.is_uri(spec.storage_path):
        return None   # a bucket has no free space to read
    try:
        found = estimate(spec, shards.read_meta(spec.data.path) if spec.data.read else {})
    except Exception as exc:  # noqa: BLE001 - the user's build_model: its trials will report it, one line each
        log.warning("storage: no room check, the baseline model did not build (%s)",
                    describe_failure(traceback.format_exc()) or exc)
        return None
    if found is None:
        return None
    try:
        existing = Path(spec.storage_path).resolve()
        while not existing.exists():   # the storage folder is made with the experiment
            existing = existing.parent
        free = shutil.disk_usage(existing).free
    except OSError as exc:
        raise UserError(f"storage_path {spec.storage_path}: cannot be reached ({type(exc).__name__}: "
                        f"{exc.strerror or exc}). Point storage_path at a folder you can write.") from None
    if found.bytes_needed > free:
        raise UserError(f"storage_path {spec.storage_path}: {size_text(free)} free, but the sweep's checkpoints need "
                        f"{found}. Free some space, point storage_path at a larger disk or a bucket "
                        "(s3://...), or run fewer trials (search.num_samples).")
    return found
