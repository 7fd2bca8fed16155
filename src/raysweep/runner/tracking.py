"""Experiment tracking with MLflow: each trial a run, its epochs as steps, the champion's files.

    tracking:
      mlflow: {uri: http://127.0.0.1:5000, experiment: brake_coast}   # both optional

A run per trial, named by its trial id and tagged with the experiment directory, holds the
trial's hyperparameters, every reported metric at each epoch (the step), and its end status
(FINISHED, or FAILED for a trial that errored). When the sweep ends, `crown` gives the champion
(the trial `rank` and `export` name) the tag `raysweep.champion` and the files of its best
checkpoint as artifacts (`champion/`); a resumed sweep goes on logging to the runs its first part
began and moves the tag where its champion changed. Without a `uri`, runs go to a local SQLite store beside the results
(`<storage_path>/mlflow.db`, artifacts in `<storage_path>/mlartifacts`), which `mlflow ui
--backend-store-uri sqlite:///...` opens. The callback runs on the driver and logs through
MLflow's client; the trials never import MLflow.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

from ray.tune import Callback

from raysweep import experiment
from raysweep.datasets import location
from raysweep.errors import UserError
from raysweep.spec.schema import Spec

log = logging.getLogger("raysweep")
LOCAL_DB, LOCAL_ARTIFACTS = "mlflow.db", "mlartifacts"
# Tune's bookkeeping in every result: not the trial's metrics.
NOT_METRICS = {"training_iteration", "time_this_iter_s", "time_total_s", "timestamp", "pid", "time_since_restore",
               "iterations_since_restore", "done", "trial_id", "checkpoint_dir_name", "should_checkpoint"}


def local_uri(storage_path: str) -> tuple[str, str]:
    """(tracking URI, artifact location) of the local store beside the results."""
    root = Path(location.absolute(storage_path))
    root.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{root / LOCAL_DB}", (root / LOCAL_ARTIFACTS).as_uri()


class MLflowTracker(Callback):
    """Logs the sweep's trials to MLflow as they report and end (see the module docstring)."""

    def __init__(self, spec: Spec, experiment_dir: str):
        from mlflow.tracking import MlflowClient  # on the driver only, and only where the spec tracks

        uri, artifacts = spec.tracking.mlflow_uri, None
        if uri is None:
            uri, artifacts = local_uri(spec.storage_path)
        self.uri = uri
        # runs are tagged with where the experiment lives (a bucket's URI, not a working copy's path)
        self.experiment_dir = experiment.home(Path(experiment_dir))
        for name in ("mlflow", "alembic"):   # their INFO lines (creating tables, migrations) are not the user's
            logging.getLogger(name).setLevel(logging.WARNING)
        self.client = MlflowClient(uri)
        name = self.experiment_name = spec.tracking.mlflow_experiment or spec.name
        try:
            found = self.client.get_experiment_by_name(name)
            self.experiment_id = found.experiment_id if found else self.client.create_experiment(
                name, artifact_location=artifacts)
        except Exception as exc:  # noqa: BLE001 - MLflow's errors for a bad URI or a server down vary by store
            raise UserError(f"tracking.mlflow: cannot use {uri} ({type(exc).__name__}: {str(exc).splitlines()[0]}); "
                            "check tracking.mlflow.uri, or leave it out for a local store beside the results") from exc
        self.runs: dict[str, str] = {}          # trial id -> MLflow run id

    def _run(self, trial) -> str:
        if trial.trial_id not in self.runs:
            existing = self.client.search_runs([self.experiment_id], f"tags.`raysweep.trial` = '{trial.trial_id}' "
                                               f"and tags.`raysweep.experiment` = '{self.experiment_dir}'")
            if existing:   # a resumed sweep goes on logging to the run its first part began
                self.runs[trial.trial_id] = existing[0].info.run_id
            else:
                run = self.client.create_run(self.experiment_id, run_name=trial.trial_id,
                                             tags={"raysweep.trial": trial.trial_id,
                                                   "raysweep.experiment": self.experiment_dir})
                self.runs[trial.trial_id] = run.info.run_id
                for key, value in sorted(trial.config.items()):
                    self.client.log_param(run.info.run_id, key, value)
        return self.runs[trial.trial_id]

    def on_trial_start(self, iteration, trials, trial, **info):
        self._run(trial)

    def on_trial_result(self, iteration, trials, trial, result, **info):
        run_id = self._run(trial)
        step = int(result.get("epoch", result.get("training_iteration", 0)))
        for key, value in result.items():
            if key in NOT_METRICS or isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            if math.isfinite(value):
                self.client.log_metric(run_id, key, float(value), step=step)

    def on_trial_complete(self, iteration, trials, trial, **info):
        self.client.set_terminated(self._run(trial), "FINISHED")

    def on_trial_error(self, iteration, trials, trial, **info):
        self.client.set_terminated(self._run(trial), "FAILED")

    def on_experiment_end(self, trials, **info):
        log.info("MLflow: %d runs in %s, experiment %r", len(self.runs), self.uri, self.experiment_name)

    def get_state(self) -> dict:
        """The runs a resumed sweep goes on logging to."""
        return {"runs": self.runs}

    def set_state(self, state: dict) -> None:
        self.runs = state["runs"]


def crown(spec: Spec, experiment_dir: Path, trial_id: str, checkpoint_dir: Path) -> None:
    """After the sweep: tag the champion's run `raysweep.champion` (and untag a run an earlier
    part of a resumed sweep crowned) and log the files of its best checkpoint as `champion/`.

    The champion is the one `rank` and `export` name (analysis.champion), and its checkpoint is
    one that pruning keeps (the best trials keep theirs), so what is logged is what is exported.
    """
    from mlflow.tracking import MlflowClient  # on the driver only, and only where the spec tracks

    uri = spec.tracking.mlflow_uri or local_uri(spec.storage_path)[0]
    client = MlflowClient(uri)
    found = client.get_experiment_by_name(spec.tracking.mlflow_experiment or spec.name)
    if found is None:
        raise UserError(f"tracking.mlflow: {uri} holds no experiment {spec.tracking.mlflow_experiment or spec.name}")
    where = f"tags.`raysweep.experiment` = '{experiment.home(experiment_dir)}'"
    ours = client.search_runs([found.experiment_id], f"{where} and tags.`raysweep.trial` = '{trial_id}'")
    if not ours:
        raise UserError(f"tracking.mlflow: no run of trial {trial_id} in {uri}")
    for run in client.search_runs([found.experiment_id], f"{where} and tags.`raysweep.champion` = 'true'"):
        if run.info.run_id != ours[0].info.run_id:
            client.delete_tag(run.info.run_id, "raysweep.champion")
    client.set_tag(ours[0].info.run_id, "raysweep.champion", "true")
    client.log_artifacts(ours[0].info.run_id, str(checkpoint_dir), "champion")
