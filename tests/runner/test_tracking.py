"""Tracking: a sweep's trials read back from MLflow's local store with MLflow's own client, and
from the files W&B and Comet write offline (offline_trackers.py), with the numbers the results
store holds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from raysweep import cli, spec
from raysweep.analysis import champion, store
from raysweep.errors import UserError
from raysweep.phases import sweep
from raysweep.runner import tracking
from raysweep.tracking import CHAMPION, TRACKERS, Where

from conftest import import_bundled
from offline_trackers import comet_experiments, wandb_runs

pytestmark = pytest.mark.slow
SPEC = "search_spaces/model_families_optuna.yaml"


def test_each_trial_is_a_run_with_its_params_epochs_and_the_champions_files(ray_session, tmp_path):
    data = import_bundled("breast_cancer", "binary", tmp_path / "cancer")
    results = tmp_path / "results"
    trackers = "{mlflow: {experiment: families_test}, wandb: {mode: offline}, comet: {mode: offline}}"
    s = spec.load(SPEC, [f"data.path={data}", f"storage_path={results}", "search.num_samples=4", "fixed.epochs=3",
                         "fixed.rounds_per_epoch=5", f"tracking={trackers}",
                         "search.points_to_evaluate=[{family: lightgbm}, {family: logistic_regression}]"])
    experiment_dir = sweep.run(s)
    results_store = store.load(experiment_dir)
    trials = results_store.trials.set_index("trial")

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
    # the family's model file beside its state, the reports it was crowned on, and the manifest that checks them
    model_files = files - {"champion/state.json", "champion/reports.json", "champion/manifest.json"}
    assert files > model_files and len(model_files) == 1
    assert model_files.pop().split("/")[1] in ("model.skops", "model.txt", "model.ubj")
    # ...of the champion's best checkpoint: the one whose report had its best val_fbeta.
    state = json.loads(Path(client.download_artifacts(champions[0].info.run_id, "champion/state.json",
                                                      str(tmp_path))).read_text())
    assert state["metrics"]["val_fbeta"] == pytest.approx(trials["best_val_fbeta"].max())

    # W&B and Comet, offline: the same runs, parameters, epochs and values as the results store
    curves = results_store.curves
    reported = {trial: [(int(r.epoch), pytest.approx(r.val_fbeta)) for r in rows.itertuples() if r.val_fbeta == r.val_fbeta]
                for trial, rows in curves.sort_values("epoch").groupby("trial")}
    checkpoint = {p.name for p in champion.best_checkpoint_dir(experiment_dir, champion.select(experiment_dir)).iterdir()}
    best = champions[0].info.run_name
    wandb = wandb_runs(results)
    assert set(wandb) == set(trials.index)
    for trial, run in wandb.items():
        assert run["config"]["family"] == trials.loc[trial, "family"]
        assert run["config"]["raysweep.experiment"] == str(experiment_dir)
        assert [(h["epoch"], h["val_fbeta"]) for h in run["history"] if "val_fbeta" in h] == reported[trial]
        assert run["exit_code"] == 0
        assert (CHAMPION in run["tags"]) == (trial == best)
    (model,) = wandb[best]["artifacts"]
    assert CHAMPION in model["aliases"] and model["files"] == checkpoint
    comet = comet_experiments(results / "comet")
    assert set(comet) == set(trials.index)
    for trial, found in comet.items():
        assert found["params"]["family"] == trials.loc[trial, "family"]
        assert found["others"]["raysweep.status"] == "FINISHED"
        assert sorted(found["metrics"]["val_fbeta"]) == reported[trial]
        assert (CHAMPION in found["tags"]) == (trial == best)
    assert comet[best]["assets"] == {f"{CHAMPION}/{name}" for name in checkpoint}


def test_a_failed_trial_ends_failed_in_each_tracker(tmp_path):
    """The end status, straight through the trackers (no sweep has a trial fail on purpose cheaply)."""
    where = Where(name="status_test", experiment=str(tmp_path / "exp"), results=str(tmp_path))
    settings = {"mlflow": {}, "wandb": {"mode": "offline"}, "comet": {"mode": "offline"}}
    for each in [TRACKERS[name].open(settings[name], where) for name in settings]:
        for trial, failed in (("ok", False), ("broken", True)):
            each.start(trial, {"lr": 0.1})
            each.log(trial, {"val_loss": 0.5}, 1)
            each.end(trial, failed)
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    statuses = {r.info.run_name: r.info.status for r in client.search_runs(
        [client.get_experiment_by_name("status_test").experiment_id])}
    assert statuses == {"ok": "FINISHED", "broken": "FAILED"}
    assert {t: r["exit_code"] for t, r in wandb_runs(tmp_path).items()} == {"ok": 0, "broken": 1}
    assert {t: e["others"]["raysweep.status"] for t, e in comet_experiments(tmp_path / "comet").items()} == \
        {"ok": "FINISHED", "broken": "FAILED"}


def test_tracking_errors_are_one_line_each(tmp_path):
    data = import_bundled("breast_cancer", "binary", tmp_path / "cancer")
    with pytest.raises(spec.SpecError) as err:
        spec.load(SPEC, [f"data.path={data}", "tracking={mlflow: {uri: 3, experment: x}}",
                         "storage_path=s3://bucket/results"])
    text = "\n".join(err.value.problems)
    assert "tracking.mlflow.uri: must be a non-empty string, got 3" in text
    assert "tracking.mlflow.experment: unknown key" in text


@pytest.mark.parametrize("seed", [0, 1])
def test_the_champion_logged_is_one_pruning_kept(ray_session, tmp_path, seed, capsys):
    """Ties on val_fbeta are common on this table; the champion MLflow crowns is the one `rank`
    names, whose checkpoint pruning keeps (a crowned trial's checkpoint had been pruned: a
    FileNotFoundError traceback after every trial had finished, and exit 1)."""
    data = import_bundled("breast_cancer", "binary", tmp_path / "cancer")
    results = tmp_path / "results"
    code = cli.main(["run", SPEC, "--set", f"data.path={data}", "--set", f"storage_path={results}",
                     "--set", "search.num_samples=8", "--set", f"search.seed={seed}", "--set", "checkpoints.keep_top=1",
                     "--set", "tracking={mlflow: {experiment: ties}}"])
    out = capsys.readouterr()
    assert code == 0 and "Traceback" not in out.out + out.err, out.err[-3000:]
    (experiment_dir,) = results.glob("model_families_optuna-*")
    client = MlflowClient(f"sqlite:///{results / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("ties").experiment_id])
    (crowned,) = [r for r in runs if r.data.tags.get("raysweep.champion") == "true"]
    assert crowned.info.run_name == champion.select(experiment_dir).trial
    assert {a.path for a in client.list_artifacts(crowned.info.run_id, "champion")} >= {"champion/state.json"}


def test_a_failing_step_after_the_sweep_leaves_it_finished(ray_session, tmp_path, monkeypatch, capsys, caplog):
    data = import_bundled("breast_cancer", "binary", tmp_path / "cancer")

    def broken(*args, **kwargs):
        raise FileNotFoundError("checkpoint_000001 is gone")

    monkeypatch.setattr(tracking, "crown", broken)
    code = cli.main(["run", SPEC, "--set", f"data.path={data}", "--set", f"storage_path={tmp_path / 'results'}",
                     "--set", "search.num_samples=2", "--set", "fixed.epochs=2", "--set", "tracking={mlflow: {}}"])
    out = capsys.readouterr()
    assert code == 0, out.err[-3000:]
    assert "logging the champion to MLflow failed (FileNotFoundError: checkpoint_000001 is gone)" in caplog.text
    assert "Traceback" not in out.out + out.err + caplog.text


class Broken:
    """A tracker whose server went away mid-sweep."""

    def log(self, *args):
        raise ConnectionError("tracking server at 127.0.0.1:5000 refused the connection")

    def where(self):
        return "nowhere"


def test_a_tracker_that_fails_mid_sweep_is_dropped_with_one_warning_and_the_others_go_on(tmp_path, caplog):
    logged = []

    class Working(Broken):
        def log(self, *args):
            logged.append(args)

    callback = tracking.TrialRuns.__new__(tracking.TrialRuns)
    callback.trackers, callback.sweep = {"mlflow": {}, "wandb": {}}, None
    callback._runs = {"mlflow": Broken(), "wandb": Working()}
    trial = type("Trial", (), {"trial_id": "t1"})()
    for epoch in (1, 2):
        callback.on_trial_result(epoch, [], trial, {"epoch": epoch, "val_loss": 0.5})
    assert list(callback.runs) == ["wandb"] and len(logged) == 2
    (warning,) = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warning.startswith("tracking: MLflow logs no more of this sweep (ConnectionError: tracking server")


def test_online_without_a_key_is_one_line_before_any_trial(tmp_path, monkeypatch):
    for name in ("WANDB_API_KEY", "WANDB_MODE", "COMET_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))   # no ~/.netrc from `wandb login`, no ~/.comet.config
    where = Where(name="keys", experiment=str(tmp_path / "exp"), results=str(tmp_path))
    with pytest.raises(UserError) as raised:   # UserError
        TRACKERS["wandb"].open({}, where)
    assert "tracking.wandb: no W&B API key" in str(raised.value) and "mode: offline" in str(raised.value)
    with pytest.raises(UserError) as raised:
        TRACKERS["comet"].open({"mode": "online"}, where)
    assert "tracking.comet: no Comet API key" in str(raised.value)
