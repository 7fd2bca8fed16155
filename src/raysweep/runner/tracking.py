"""Experiment tracking with MLflow: each trial a run, its epochs as steps, the champion's files.

    tracking:
      mlflow: {uri: http://127.0.0.1:5000, experiment: brake_coast}   # both optional

A run per trial, named by its trial id and tagged with the experiment directory, holds the
trial's hyperparameters, every reported metric at each epoch (the step), and its end status
(FINISHED, or FAILED for a trial that errored). When the sweep ends, the best trial that did
not fail gets the files of its best checkpoint as artifacts (`champion/`) and the tag
`raysweep.champion` (a resumed sweep keeps the callback's state, so it crowns the best of all its
trials, and moves the tag from a run its first part crowned). Without a `uri`, runs go to a local SQLite store beside the results
(`<storage_path>/mlflow.db`, artifacts in `<storage_path>/mlartifacts`), which `mlflow ui
--backend-store-uri sqlite:///...` opens. The callback runs on the driver and logs through
MLflow's client; the trials never import MLflow.
"""

from __future__ import annotations

import logging
import math
import tempfile
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
        self.uri, self.metric, self.mode = uri, spec.metric, spec.mode
        self.experiment_dir = experiment_dir
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
        self.best: dict[str, float] = {}        # trial id -> best value of the spec's metric so far
        self.failed: set[str] = set()
        self.improved: dict[str, bool] = {}     # trial id -> did its last report improve on the best
        self.checkpoints: dict[str, object] = {}   # trial id -> the tune.Checkpoint of its best report

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
        value = result.get(self.metric)
        finite = isinstance(value, (int, float)) and math.isfinite(value)
        before = self.best.get(trial.trial_id)
        better = finite and (before is None or (value > before if self.mode == "max" else value < before))
        if better:
            self.best[trial.trial_id] = value
        self.improved[trial.trial_id] = better   # a NaN report is no improvement: its checkpoint is not the best

    def on_checkpoint(self, iteration, trials, trial, checkpoint, **info):
        # The checkpoint of the report just seen, where that report is the trial's best so far
        # (Tune keeps each trial's best checkpoints by the spec's metric). A TorchTrainer's
        # checkpoints stay with its Train run and never come here: see on_experiment_end.
        if self.improved.get(trial.trial_id):
            self.checkpoints[trial.trial_id] = checkpoint

    def on_trial_complete(self, iteration, trials, trial, **info):
        self.client.set_terminated(self._run(trial), "FINISHED")

    def on_trial_error(self, iteration, trials, trial, **info):
        self.failed.add(trial.trial_id)
        self.client.set_terminated(self._run(trial), "FAILED")

    def on_experiment_end(self, trials, **info):
        ranked = [t for t in self.best if t not in self.failed]
        if ranked:
            champion = (max if self.mode == "max" else min)(ranked, key=self.best.__getitem__)
            self._crown(champion, next((t for t in trials if t.trial_id == champion), None))
        log.info("MLflow: %d runs in %s, experiment %r", len(self.runs), self.uri, self.experiment_name)

    def _crown(self, champion: str, trial) -> None:
        """Tag the champion's run (and untag a run an earlier part of a resumed sweep crowned),
        and log the files of its best checkpoint: downloaded where the results are at a URI; a
        TorchTrainer trial's latest (its best epoch's weights are in it, best.pt)."""
        tagged = self.client.search_runs([self.experiment_id], f"tags.`raysweep.champion` = 'true' and "
                                         f"tags.`raysweep.experiment` = '{self.experiment_dir}'")
        for run in tagged:
            if run.info.run_id != self.runs[champion]:
                self.client.delete_tag(run.info.run_id, "raysweep.champion")
        run_id = self.runs[champion]
        self.client.set_tag(run_id, "raysweep.champion", "true")
        with tempfile.TemporaryDirectory() as tmp:
            saved = self.checkpoints.get(champion)
            directory = saved.to_directory(tmp) if saved is not None else None
            if directory is None and trial is not None:
                directory = experiment.checkpoint_dir(Path(self.experiment_dir), trial)
            if directory is None or not Path(directory).is_dir():
                log.warning("MLflow: the champion %s has no checkpoint to log as artifacts", champion)
                return
            self.client.log_artifacts(run_id, str(directory), "champion")

    def get_state(self) -> dict:
        """What a resumed sweep needs to name the champion of all its trials, not just its own part's."""
        return {"runs": self.runs, "best": self.best, "failed": self.failed, "checkpoints": self.checkpoints}

    def set_state(self, state: dict) -> None:
        self.runs, self.best = state["runs"], state["best"]
        self.failed, self.checkpoints = state["failed"], state["checkpoints"]
