"""Experiment trackers: where a sweep's trials are logged besides its experiment directory.

    tracking:
      mlflow: {uri: http://127.0.0.1:5000, experiment: brake_coast}   # every key optional
      wandb:  {project: brake_coast, entity: my-team, mode: offline}
      comet:  {project: brake_coast, workspace: my-team, mode: offline}

Each tracker is one entry of `TRACKERS`: the keys its spec section takes, the package it needs
(and the extra that installs it), what it refuses, and how it opens its runs. Every one logs the
same record, driven from Tune's events on the driver (runner/tracking.py): a run per trial, named
by its trial id and tagged with the experiment; the trial's hyperparameters; every reported metric
at each epoch; its end (finished or failed); and, once the sweep ends, the champion (the trial
`rank` and `export` name) marked and its best checkpoint's files attached. A resumed sweep goes on
logging to the runs its first part began. Nothing here imports Ray, and each tool is imported only
where a spec names it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from raysweep.tracking.comet_runs import CometRuns
from raysweep.tracking.mlflow_runs import MLflowRuns
from raysweep.tracking.runs import CHAMPION, Runs, Where, metrics_of
from raysweep.tracking.wandb_runs import WandbRuns


@dataclass(frozen=True)
class Tracker:
    """One tool's entry: its spec section and how it opens a sweep's runs."""

    name: str
    title: str                                     # how the tool spells its name
    keys: tuple[str, ...]                          # the settings `tracking.<name>` takes
    package: str                                   # the module it imports
    extra: str                                     # `pip install 'raysweep[<extra>]'`
    open: Callable[[dict, Where], Runs]            # (its settings, the sweep) -> its runs
    # (its settings, the storage_path) -> problems, each "key: what is wrong"
    check: Callable[[dict, str], list[str]] = field(default=lambda settings, storage_path: [])
    choices: dict[str, tuple[str, ...]] = field(default_factory=dict)   # keys that take one of a few values


def _mlflow_problems(settings: dict, storage_path: str) -> list[str]:
    if "uri" not in settings and "://" in str(storage_path):
        return [f"uri: required when storage_path is a URI ({storage_path}): the local store beside the results "
                "would be on the driver only; give a tracking server's address"]
    return []


MODES = ("online", "offline")
TRACKERS: dict[str, Tracker] = {t.name: t for t in (
    Tracker("mlflow", "MLflow", ("uri", "experiment"), "mlflow", "mlflow", MLflowRuns, _mlflow_problems),
    Tracker("wandb", "W&B", ("project", "entity", "mode", "dir"), "wandb", "wandb", WandbRuns,
            choices={"mode": MODES}),
    Tracker("comet", "Comet", ("project", "workspace", "mode", "dir"), "comet_ml", "comet", CometRuns,
            choices={"mode": MODES}),
)}


__all__ = ["CHAMPION", "TRACKERS", "Runs", "Tracker", "Where", "metrics_of"]
