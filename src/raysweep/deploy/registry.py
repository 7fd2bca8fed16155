"""The model registry: which model is the champion of a workload on a dataset, and which were before.

    raysweep champion results/families-* --min-metric 0.9     # registers a champion that wins on test
    raysweep champion --show                                  # each registered model's versions
    raysweep predict --model registry:NAME --data DIR         # the current champion, wherever it is kept

A registered model (one per workload and dataset, `NAME`) holds versions; each is an exported
model directory (deploy/export.py) with the record `raysweep champion` made of it: the experiment
and trial, the validation metric it was chosen on, its score on the held-out test split, and the
fingerprints of the data (datasets/fingerprint.py). The alias `champion` names the version in
production; a new version takes it only when it beats the champion on the same test split.

Two kinds keep that record, behind one `Registry` contract (model_versions.py):
- MLflow's Model Registry (mlflow_registry.py), where the sweeps track with MLflow or a
  tracking URI is given: the version's source is the model directory logged to the trial's run;
  its tags hold the record; `champion` is an MLflow alias.
- A folder (local_registry.py) otherwise: `registry.json` and a copy of each version's model
  directory beside it.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from raysweep.datasets import location
from raysweep.deploy.local_registry import RECORD_FILE, LocalRegistry
from raysweep.deploy.mlflow_registry import MLflowRegistry
from raysweep.deploy.model_versions import CHAMPION_ALIAS, LOCATION_HELP, Registry, Version, not_registered
from raysweep.errors import UserError
from raysweep.tracking.mlflow_runs import LOCAL_DB, local_uri

LOCAL_DIR = "registry"             # the folder registry's default name, beside the results
ENVIRONMENT = "RAYSWEEP_REGISTRY"  # where --show and predict look without --registry
SCHEME = "registry:"               # `predict --model registry:NAME`
MLFLOW_SCHEMES = ("sqlite:", "http:", "https:", "postgresql", "mysql", "mssql", "databricks")


def is_mlflow(where: str) -> bool:
    return str(where).startswith(MLFLOW_SCHEMES)


def open_registry(where: str) -> Registry:
    """The registry at `where`: an MLflow tracking URI, or a folder."""
    if is_mlflow(where):
        return MLflowRegistry(where)
    if location.is_uri(where):
        raise UserError(f"--registry {where}: a registry is {LOCATION_HELP}; a bucket is not one")
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


__all__ = ["CHAMPION_ALIAS", "Registry", "Version", "find", "for_experiment", "is_mlflow", "model_name", "not_registered",
           "open_registry"]
