"""MLflow's Model Registry as raysweep's registry (deploy/registry.py), through MLflow's own client.

A version's model directory is logged to the champion trial's MLflow run (the one the sweep's
tracker made, found by its `raysweep.trial` and `raysweep.experiment` tags; a run of its own in
the experiment `raysweep-registry` where the sweep did not track with MLflow), under
`registered_model/`, and the version's source points there. The version's tags hold the record
(`raysweep.record`, JSON) and, one tag each, what a reader of MLflow's UI looks for: the
experiment, the trial, the data's fingerprints, the test score, the model card's metrics.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

from raysweep.deploy.model_versions import CHAMPION_ALIAS, LOCATION_HELP, Version, not_registered
from raysweep.errors import UserError
from raysweep.tracking.mlflow_runs import LOCAL_ARTIFACTS

ARTIFACT_PATH = "registered_model"
RECORD_TAG = "raysweep.record"
OWN_EXPERIMENT = "raysweep-registry"   # runs of champions whose sweeps did not track with MLflow
DOWNLOADED = ".raysweep_complete"      # marks a version's download as whole


class MLflowRegistry:
    def __init__(self, uri: str):
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")   # no bars on a normal run
        for name in ("mlflow", "alembic"):   # their INFO lines (creating tables, migrations) are not the user's
            logging.getLogger(name).setLevel(logging.WARNING)
        try:
            from mlflow.exceptions import MlflowException
            from mlflow.tracking import MlflowClient
        except ImportError:
            raise UserError(f"--registry {uri}: MLflow's Model Registry needs MLflow's client: "
                            "pip install 'raysweep[mlflow]' (or name a folder as the registry)") from None

        self.location, self.missing = uri, MlflowException
        self.client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        try:
            self.client.search_registered_models(max_results=1)
        except Exception as exc:  # noqa: BLE001 - MLflow's errors for a bad URI or a server down vary by store
            raise UserError(f"--registry {uri}: cannot use MLflow's Model Registry there ({type(exc).__name__}: "
                            f"{str(exc).splitlines()[0]}); give {LOCATION_HELP}") from None

    def _version(self, found, champion: int | None) -> Version:
        record = json.loads(found.tags.get(RECORD_TAG, "{}"))
        return Version(found.name, int(found.version), found.source, record, int(found.version) == champion)

    def _champion(self, name: str) -> int | None:
        try:
            aliases = self.client.get_registered_model(name).aliases
        except self.missing:
            return None
        return int(aliases[CHAMPION_ALIAS]) if CHAMPION_ALIAS in aliases else None

    def current(self, name: str) -> Version | None:
        number = self._champion(name)
        return None if number is None else self._version(self.client.get_model_version(name, str(number)), number)

    def _run_for(self, record: dict) -> str:
        """The champion trial's run (as the sweep's tracker tagged it), else a new run for it."""
        ids = [e.experiment_id for e in self.client.search_experiments()]
        query = (f"tags.`raysweep.trial` = '{record['trial']}' and "
                 f"tags.`raysweep.experiment` = '{record['experiment']}'")
        found = self.client.search_runs(ids, query, max_results=1) if ids else []
        if found:
            return found[0].info.run_id
        own = self.client.get_experiment_by_name(OWN_EXPERIMENT)
        experiment_id = own.experiment_id if own else self.client.create_experiment(
            OWN_EXPERIMENT, artifact_location=self._artifact_location())
        run = self.client.create_run(experiment_id, run_name=record["trial"],
                                     tags={"raysweep.trial": record["trial"], "raysweep.experiment": record["experiment"]})
        self.client.set_terminated(run.info.run_id)
        return run.info.run_id

    def _artifact_location(self) -> str | None:
        """Beside a SQLite store, as the sweep's tracker puts its runs' artifacts (a server keeps its own)."""
        if self.location.startswith("sqlite:///"):
            return (Path(self.location.removeprefix("sqlite:///")).resolve().parent / LOCAL_ARTIFACTS).as_uri()
        return None

    def register(self, name: str, record: dict, model_dir: Path) -> Version:
        try:
            self.client.get_registered_model(name)
        except self.missing:
            self.client.create_registered_model(name, tags={"raysweep.workload": record["workload"],
                                                            "raysweep.data": record["data"]["path"]},
                                                description=f"{record['workload']} on {record['data']['path']}, "
                                                            "registered by raysweep champion")
        run_id = self._run_for(record)
        self.client.log_artifacts(run_id, str(model_dir), ARTIFACT_PATH)
        source = f"{self.client.get_run(run_id).info.artifact_uri}/{ARTIFACT_PATH}"
        tags = {RECORD_TAG: json.dumps(record, default=str), "raysweep.experiment": record["experiment"],
                "raysweep.trial": record["trial"], "raysweep.data.val": record["data"]["val"],
                "raysweep.data.test": str(record["data"]["test"]),
                f"raysweep.validation.{record['metric']}": str(record["validation"]),
                f"raysweep.test.{record['test_metric']}": str(record["test"]),
                **{f"metric.{k}": str(v) for k, v in record.get("card_metrics", {}).items()}}
        made = self.client.create_model_version(
            name, source=source, run_id=run_id, tags=tags,
            description=f"trial {record['trial']} of {record['experiment']}: {record['metric']} "
                        f"{record['validation']:.4g} on val, {record['test_metric']} {record['test']:.4g} on test")
        self.client.set_registered_model_alias(name, CHAMPION_ALIAS, made.version)
        return self._version(self.client.get_model_version(name, made.version), int(made.version))

    def versions(self, name: str | None = None) -> list[Version]:
        names = sorted(m.name for m in self.client.search_registered_models())
        if name is not None and name not in names:
            raise not_registered(name, self.location, names)
        found = []
        for each in [name] if name else names:
            champion = self._champion(each)
            versions = self.client.search_model_versions(f"name = '{each}'")
            found += sorted((self._version(v, champion) for v in versions), key=lambda v: v.version)
        return found

    def fetch(self, name: str) -> tuple[Version, Path]:
        found = self.current(name)
        if found is None:
            raise not_registered(name, self.location, sorted(m.name for m in self.client.search_registered_models()))
        import mlflow.artifacts

        cache = Path(os.environ.get("RAYSWEEP_CACHE", "~/.cache/raysweep")).expanduser() / "registry"
        folder = cache / hashlib.sha1(self.location.encode()).hexdigest()[:10] / name / f"v{found.version}"
        if not (folder / DOWNLOADED).is_file():
            folder.mkdir(parents=True, exist_ok=True)
            got = Path(mlflow.artifacts.download_artifacts(artifact_uri=found.model, dst_path=str(folder),
                                                           tracking_uri=self.location))
            (folder / DOWNLOADED).write_text(str(got.relative_to(folder)))
        return found, folder / (folder / DOWNLOADED).read_text()
