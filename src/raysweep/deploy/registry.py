"""The model registry: which model is the champion of a workload on a dataset, and which were before.

    raysweep champion results/families-* --min-metric 0.9     # registers a champion that wins on test
    raysweep champion --show                                  # each registered model's versions
    raysweep predict --model registry:NAME --data DIR         # the current champion, wherever it is kept

A registered model (one per workload and dataset, `NAME`) holds versions; each is an exported
model directory (deploy/export.py) with the record `raysweep champion` made of it: the experiment
and trial, the validation metric it was chosen on, its score on the held-out test split, and the
fingerprints of the data (datasets/fingerprint.py). The alias `champion` names the version in
production; a new version takes it only when it beats the champion on the same test split.

Two kinds keep that record, behind one `Registry` contract:
- MLflow's Model Registry (mlflow_registry.py), where the sweeps track with MLflow or a
  tracking URI is given: the version's source is the model directory logged to the trial's run;
  its tags hold the record; `champion` is an MLflow alias.
- A folder (local_registry.py) otherwise: `registry.json` and a copy of each version's model
  directory beside it.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from raysweep.datasets import location
from raysweep.errors import UserError
from raysweep.tracking.mlflow_runs import local_uri

CHAMPION_ALIAS = "champion"
LOCAL_DIR = "registry"             # the folder registry's default name, beside the results
ENVIRONMENT = "RAYSWEEP_REGISTRY"  # where --show and predict look without --registry
SCHEME = "registry:"               # `predict --model registry:NAME`
MLFLOW_SCHEMES = ("sqlite:", "http:", "https:", "postgresql", "mysql", "mssql", "databricks")
LOCATION_HELP = ("a folder for raysweep's own registry, or an MLflow tracking URI (sqlite:///path/mlflow.db, "
                 "http://127.0.0.1:5000)")


@dataclass(frozen=True)
class Version:
    """One registered version: its number, where its model directory is, and the record made of it."""

    name: str
    version: int
    model: str        # its model directory: a folder, or an MLflow artifact URI
    record: dict      # experiment, trial, workload, metric, mode, validation, test_metric, test, data, ...
    champion: bool    # holds the alias now


class Registry(Protocol):
    """Where registered models are kept (a folder, or MLflow's Model Registry)."""

    location: str

    def current(self, name: str) -> Version | None:
        """The version the alias `champion` names; None where the model has none yet."""

    def register(self, name: str, record: dict, model_dir: Path) -> Version:
        """A new version of `name` from an exported model directory, with the alias moved to it."""

    def versions(self, name: str | None = None) -> list[Version]:
        """Every version of `name` (of every model without one), by name, oldest first."""

    def fetch(self, name: str) -> tuple[Version, Path]:
        """The champion's version and its model directory on this machine (downloaded once)."""


def is_mlflow(where: str) -> bool:
    return str(where).startswith(MLFLOW_SCHEMES)


def open_registry(where: str) -> Registry:
    """The registry at `where`: an MLflow tracking URI, or a folder."""
    if is_mlflow(where):
        from raysweep.deploy.mlflow_registry import MLflowRegistry

        return MLflowRegistry(where)
    if location.is_uri(where):
        raise UserError(f"--registry {where}: a registry is {LOCATION_HELP}; a bucket is not one")
    from raysweep.deploy.local_registry import LocalRegistry

    return LocalRegistry(Path(where))


def for_experiment(spec) -> str:
    """Where a sweep's champion is registered by default: its MLflow store where it tracks with
    MLflow (the server it names, or the local store beside its results), else a folder beside
    its results."""
    mlflow = spec.tracking.trackers.get("mlflow")
    storage = location.absolute(spec.storage_path)
    if mlflow is not None:
        return mlflow.get("uri") or local_uri(Path(storage))[0]
    if location.is_uri(storage):
        raise UserError(f"the experiments are stored at {storage}, where raysweep keeps no registry of its own; "
                        f"name one with --registry ({LOCATION_HELP})")
    return str(Path(storage) / LOCAL_DIR)


def find(where: str | None, results: Path = Path("results")) -> str:
    """The registry `--show` and `predict` read: `where`, else $RAYSWEEP_REGISTRY, else the one
    a sweep in `results/` registered into (its folder registry, else its local MLflow store)."""
    where = where or os.environ.get(ENVIRONMENT)
    if where:
        return where
    from raysweep.deploy.local_registry import RECORD_FILE
    from raysweep.tracking.mlflow_runs import LOCAL_DB

    if (results / LOCAL_DIR / RECORD_FILE).is_file():
        return str(results / LOCAL_DIR)
    if (results / LOCAL_DB).is_file():
        return f"sqlite:///{(results / LOCAL_DB).resolve()}"
    raise UserError(f"no registry found in {results}/: name one with --registry ({LOCATION_HELP}), or set "
                    f"{ENVIRONMENT}")


def model_name(workload: str, data_path: str) -> str:
    """A registered model per workload and dataset: `<workload>-<dataset folder>`, e.g.
    `families-my_table` (a workload given as a file is named by its stem)."""
    stem = Path(workload).stem if workload.endswith(".py") else workload.rsplit(".", 1)[-1]
    dataset = str(data_path).rstrip("/").rsplit("/", 1)[-1]
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{stem}-{dataset}")


def not_registered(name: str, where: str, known: list[str]) -> UserError:
    shown = ", ".join(known) if known else "none yet"
    return UserError(f"{where} has no registered model {name!r} (registered: {shown}); raysweep champion "
                     "EXPERIMENT... registers one")
