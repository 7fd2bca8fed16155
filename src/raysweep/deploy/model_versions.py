"""What a model registry is to raysweep (deploy/registry.py picks one): its versions and the contract
both kinds keep, MLflow's Model Registry (mlflow_registry.py) and a folder (local_registry.py)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from raysweep.errors import UserError

CHAMPION_ALIAS = "champion"
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


def not_registered(name: str, where: str, known: list[str]) -> UserError:
    shown = ", ".join(known) if known else "none yet"
    return UserError(f"{where} has no registered model {name!r} (registered: {shown}); raysweep champion "
                     "EXPERIMENT... registers one")
