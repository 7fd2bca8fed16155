"""MLflow tracking: a sweep's trials read back with MLflow's own client from the local store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from raysweep import spec
from raysweep.analysis import store
from raysweep.phases import sweep

from conftest import import_bundled

pytestmark = pytest.mark.slow
SPEC = "search_spaces/model_families_optuna.yaml"


def test_each_trial_is_a_run_with_its_params_epochs_and_the_champions_files(ray_session, tmp_path):
    data = import_bundled("breast_cancer", "binary", tmp_path / "cancer")
    results = tmp_path / "results"
    s = spec.load(SPEC, [f"data.path={data}", f"storage_path={results}", "search.num_samples=4", "fixed.epochs=3",
                         "fixed.rounds_per_epoch=5", "tracking={mlflow: {experiment: families_test}}",
                         "search.points_to_evaluate=[{family: lightgbm}, {family: logistic_regression}]"])
    experiment_dir = sweep.run(s)
    trials = store.load(experiment_dir).trials.set_index("trial")

    client = MlflowClient(f"sqlite:///{results / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("families_test")
    runs = {r.info.run_name: r for r in client.search_runs([experiment.experiment_id])}
    assert set(runs) == set(trials.index)
    for trial, run in runs.items():
        assert run.info.status == "FINISHED" and run.data.tags["raysweep.experiment"] == str(experiment_dir)
        assert run.data.params["family"] == trials.loc[trial, "family"]
        history = client.get_metric_history(run.info.run_id, "val_fbeta")
        boosted = trials.loc[trial, "family"] in ("lightgbm", "xgboost")
        epochs = int(trials.loc[trial, "epochs_run"])
        assert [m.step for m in history] == (list(range(1, epochs + 1)) if boosted else [3])   # epochs are steps
        assert max(m.value for m in history) == pytest.approx(trials.loc[trial, "best_val_fbeta"])
    champions = [r for r in runs.values() if r.data.tags.get("raysweep.champion") == "true"]
    assert len(champions) == 1
    assert champions[0].info.run_name == trials["best_val_fbeta"].idxmax()
    files = {a.path for a in client.list_artifacts(champions[0].info.run_id, "champion")}
    assert "champion/state.json" in files and len(files) == 2   # the family's model file beside it
    # ...of the champion's best checkpoint: the one whose report had its best val_fbeta.
    state = json.loads(Path(client.download_artifacts(champions[0].info.run_id, "champion/state.json",
                                                      str(tmp_path))).read_text())
    assert state["metrics"]["val_fbeta"] == pytest.approx(trials["best_val_fbeta"].max())


def test_tracking_errors_are_one_line_each(tmp_path):
    data = import_bundled("breast_cancer", "binary", tmp_path / "cancer")
    with pytest.raises(spec.SpecError) as err:
        spec.load(SPEC, [f"data.path={data}", "tracking={mlflow: {uri: 3, experment: x}}",
                         "storage_path=s3://bucket/results"])
    text = "\n".join(err.value.problems)
    assert "tracking.mlflow.uri: must be a non-empty string, got 3" in text
    assert "tracking.mlflow.experment: unknown key" in text
