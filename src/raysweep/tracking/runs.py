"""What every tracker shares: the sweep it logs (`Where`), the `Runs` it opens, and what of a
result is a metric. The trackers themselves are one module each; `raysweep.tracking` lists them."""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

# Tune's bookkeeping in every result: not the trial's metrics.
NOT_METRICS = {"training_iteration", "time_this_iter_s", "time_total_s", "timestamp", "pid", "time_since_restore",
               "iterations_since_restore", "done", "trial_id", "checkpoint_dir_name", "should_checkpoint", "epoch"}
CHAMPION = "champion"   # the tag (W&B: also the artifact's alias) that marks the champion's run


@dataclass(frozen=True)
class Where:
    """What every tracker needs to know of the sweep it logs."""

    name: str          # the spec's name: the default project or experiment
    experiment: str    # where the experiment lives (a bucket's URI, not a working copy): each run's tag
    results: str       # the storage_path, absolute where local: local stores default to beside it

    def local_results(self) -> Path | None:
        """The results' folder on this machine, or None where they are in a bucket."""
        return None if "://" in self.results else Path(self.results)

    def run_key(self, trial_id: str) -> str:
        """A trial's run id in a tool that takes one: the same for the same trial of the same
        experiment (a resumed sweep finds its runs again), unique across experiments."""
        return hashlib.sha256(f"{self.experiment}\0{trial_id}".encode()).hexdigest()


class Runs(Protocol):
    """One tracker's runs of one sweep, as the driver's callback and the crowning step use them."""

    def start(self, trial_id: str, params: dict) -> None:
        """Open the trial's run (or find the one a resumed sweep began) with its hyperparameters."""

    def log(self, trial_id: str, metrics: dict[str, float], epoch: int) -> None:
        """The metrics of one report; the epoch is the step."""

    def end(self, trial_id: str, failed: bool) -> None:
        """Close the trial's run as finished or failed."""

    def crown(self, trial_id: str, checkpoint_dir: Path, record: dict) -> None:
        """Mark the trial's run as the champion and attach its checkpoint's files (`record`:
        the metric and value it won by), unmarking a champion an earlier part of the sweep named."""

    def close(self) -> None:
        """The sweep is over, or stopped: let go of the runs still open (unfinished trials' runs,
        which a resumed sweep reopens)."""

    def where(self) -> str:
        """Where the runs went, for one log line."""


def metrics_of(result: dict) -> dict[str, float]:
    """What a tracker logs of one of Tune's results: the trial's finite numbers, no bookkeeping."""
    return {key: float(value) for key, value in result.items()
            if key not in NOT_METRICS and isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value)}
