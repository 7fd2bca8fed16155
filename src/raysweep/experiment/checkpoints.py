"""Where a trial's checkpoints are, under either executor.

An in-trial run reports its checkpoints to Tune, which keeps them in the trial's own folder; a
TorchTrainer trial drives a Train run of its own, named after the trial, which keeps them under
`train_runs/train-<trial id>/` at the experiment's home (Train writes there from any node). Export,
ensembles, the pruner, the trackers and the analysis find a trial's checkpoints here, whichever
executor ran it. The files inside a checkpoint are named in training/checkpoint.py.
"""

from __future__ import annotations

from pathlib import Path

from raysweep.datasets import location
from raysweep.experiment.names import TRAIN_RUNS_DIR
from raysweep.experiment.working_copy import home


def train_runs(experiment_dir: Path) -> str:
    """Where TorchTrainer trials keep their checkpoints (Train writes them there from any node)."""
    return location.join(home(experiment_dir), TRAIN_RUNS_DIR)


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
