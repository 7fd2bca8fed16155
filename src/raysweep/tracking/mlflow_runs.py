"""MLflow: a run per trial in an MLflow experiment (default: the spec's name), through MLflow's client.

Without a `uri`, runs go to a local SQLite store beside the results (`<storage_path>/mlflow.db`,
artifacts in `<storage_path>/mlartifacts`), which `mlflow ui --backend-store-uri sqlite:///...`
opens. Runs are found again by their tags (`raysweep.trial`, `raysweep.experiment`), so a resumed
sweep, or the crowning step in another process, logs to the runs the sweep began.
"""

from __future__ import annotations

import logging
from pathlib import Path

from raysweep.errors import UserError
from raysweep.tracking.runs import CHAMPION, Where

LOCAL_DB, LOCAL_ARTIFACTS = "mlflow.db", "mlartifacts"
CHAMPION_TAG = f"raysweep.{CHAMPION}"


def local_uri(results: Path) -> tuple[str, str]:
    """(tracking URI, artifact location) of the local store beside the results."""
    results.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{results / LOCAL_DB}", (results / LOCAL_ARTIFACTS).as_uri()


class MLflowRuns:
    def __init__(self, settings: dict, where: Where):
        from mlflow.tracking import MlflowClient

        uri, artifacts = settings.get("uri"), None
        if uri is None:
            uri, artifacts = local_uri(where.local_results())
        for name in ("mlflow", "alembic"):   # their INFO lines (creating tables, migrations) are not the user's
            logging.getLogger(name).setLevel(logging.WARNING)
        self.uri, self.sweep = uri, where
        self.client = MlflowClient(uri)
        self.experiment_name = settings.get("experiment") or where.name
        try:
            found = self.client.get_experiment_by_name(self.experiment_name)
            self.experiment_id = found.experiment_id if found else self.client.create_experiment(
                self.experiment_name, artifact_location=artifacts)
        except Exception as exc:  # noqa: BLE001 - MLflow's errors for a bad URI or a server down vary by store
            raise UserError(f"tracking.mlflow: cannot use {uri} ({type(exc).__name__}: {str(exc).splitlines()[0]}); "
                            "check tracking.mlflow.uri, or leave it out for a local store beside the results") from exc
        self.runs: dict[str, str] = {}          # trial id -> MLflow run id

    def _find(self, trial_id: str, extra: str = "") -> list:
        return self.client.search_runs([self.experiment_id], f"tags.`raysweep.experiment` = '{self.sweep.experiment}'"
                                       + (f" and tags.`raysweep.trial` = '{trial_id}'" if trial_id else "") + extra)

    def _run(self, trial_id: str, params: dict | None = None) -> str:
        """The trial's run id: the one this sweep (or its first part, before a resume) began, found
        by its tags once, else a new run with the trial's `params`."""
        if trial_id not in self.runs:
            existing = self._find(trial_id)
            if existing:   # a resumed sweep goes on logging to the run its first part began
                self.runs[trial_id] = existing[0].info.run_id
            else:
                run = self.client.create_run(self.experiment_id, run_name=trial_id,
                                             tags={"raysweep.trial": trial_id, "raysweep.experiment": self.sweep.experiment})
                self.runs[trial_id] = run.info.run_id
                for key, value in sorted((params or {}).items()):
                    self.client.log_param(run.info.run_id, key, value)
        return self.runs[trial_id]

    def start(self, trial_id: str, params: dict) -> None:
        self._run(trial_id, params)

    def log(self, trial_id: str, metrics: dict[str, float], epoch: int) -> None:
        run_id = self._run(trial_id)
        for key, value in metrics.items():
            self.client.log_metric(run_id, key, value, step=epoch)

    def end(self, trial_id: str, failed: bool) -> None:
        self.client.set_terminated(self._run(trial_id), "FAILED" if failed else "FINISHED")

    def crown(self, trial_id: str, checkpoint_dir: Path, record: dict) -> None:
        ours = self._find(trial_id)
        if not ours:
            raise UserError(f"tracking.mlflow: no run of trial {trial_id} in {self.uri}")
        for run in self._find("", f" and tags.`{CHAMPION_TAG}` = 'true'"):
            if run.info.run_id != ours[0].info.run_id:
                self.client.delete_tag(run.info.run_id, CHAMPION_TAG)
        self.client.set_tag(ours[0].info.run_id, CHAMPION_TAG, "true")
        self.client.log_artifacts(ours[0].info.run_id, str(checkpoint_dir), CHAMPION)

    def close(self) -> None:
        """An unfinished trial's run stays RUNNING in MLflow until a resumed sweep ends it."""

    def where(self) -> str:
        return f"MLflow: {len(self.runs)} runs in {self.uri}, experiment {self.experiment_name!r}"
