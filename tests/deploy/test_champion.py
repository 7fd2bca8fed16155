"""`raysweep champion` over two real sweeps of the model families, tracked in a real MLflow store
(SQLite), read back with MLflow's own client: the threshold on test, a first champion, a better
challenger that takes the alias, a worse one that leaves it, and the registry's champion predicting."""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timedelta, timezone

import pytest
import yaml
from mlflow.tracking import MlflowClient

from raysweep import cli, experiment, spec
from raysweep.deploy import champions
from raysweep.phases import sweep

pytestmark = pytest.mark.slow

# One family each: a single stump (weak) and boosted trees (strong), two trials apiece.
WEAK = {"family": "random_forest", "forest_trees": 1, "forest_max_depth": 1, "forest_max_features": 0.2}
STRONG = {"family": "xgboost", "xgb_max_depth": 3, "xgb_min_child_weight": 1.0, "xgb_subsample": 0.9,
          "xgb_colsample_bytree": 0.9}


def families_spec(tmp_path, data, storage, name: str, fixed: dict, params: dict) -> str:
    raw = {"name": name, "workload": "families", "data": {"path": str(data)}, "metric": "val_fbeta", "mode": "max",
           "fixed": {"epochs": 2, "rounds_per_epoch": 5, "fbeta_beta": 0.5, "class_weight": "balanced", **fixed},
           "params": params, "search": {"algorithm": "random", "num_samples": 2, "seed": 0},
           "scheduler": {"type": "fifo"}, "resources": {"max_concurrent_trials": 1, "cpus_per_worker": 1},
           "tracking": {"mlflow": {}}, "storage_path": str(storage)}
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return str(path)


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    from sklearn.datasets import load_breast_cancer

    folder = tmp_path_factory.mktemp("champion_table")
    frame = load_breast_cancer(as_frame=True).frame
    frame.columns = [c.replace(" ", "_") for c in frame.columns]
    frame.to_csv(folder / "cancer.csv", index=False)
    out = folder / "cancer"
    assert cli.main(["data", "import", str(folder / "cancer.csv"), "--target", "target", "--task", "binary",
                     "--test-fraction", "0.2", "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def sweeps(ray_session, table, tmp_path_factory):
    """(results folder, the weak sweep, the strong sweep), both tracked in results/mlflow.db."""
    folder = tmp_path_factory.mktemp("champion_sweeps")
    results = folder / "results"
    weak = sweep.run(spec.load(families_spec(folder, table, results, "weak", WEAK,
                                              {"forest_min_samples_leaf": {"type": "randint", "low": 1, "high": 3}})))
    strong = sweep.run(spec.load(families_spec(folder, table, results, "strong", STRONG,
                                                {"xgb_learning_rate": {"type": "loguniform", "low": 0.1, "high": 0.3}})))
    return results, weak, strong


def test_two_sweeps_into_one_registered_champion(sweeps, table, tmp_path, capsys, monkeypatch):
    results, weak, strong = sweeps
    monkeypatch.chdir(results.parent)   # --show and predict find results/mlflow.db from here
    db = f"sqlite:///{results / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=db, registry_uri=db)
    name = f"families-{table.name}"

    # Below the threshold on test: nothing registered, exit 1, the reason printed.
    assert cli.main(["champion", str(weak), "--min-metric", "0.999"]) == 1
    out, err = capsys.readouterr()
    assert "threshold asks for at least 0.999" in err and "Nothing registered" in err and "Traceback" not in err
    assert client.search_registered_models() == []
    weak_evaluation = json.loads((weak / "test_evaluation.json").read_text())
    weak_test = weak_evaluation["champion"]
    assert json.loads((weak / champions.DECISION_FILE).read_text())["outcome"] == champions.BELOW_THRESHOLD

    # The weak sweep's best becomes the first champion (its test score reused, not taken again).
    assert cli.main(["champion", str(weak)]) == 0
    assert json.loads((weak / "test_evaluation.json").read_text()) == weak_evaluation
    assert "registered: " in capsys.readouterr().out
    first = client.get_model_version_by_alias(name, "champion")
    assert int(first.version) == 1 and first.tags["raysweep.trial"] == weak_test["trial"]
    assert first.tags["raysweep.experiment"] == str(weak)
    assert float(first.tags["raysweep.test.fbeta_at_threshold"]) == pytest.approx(
        weak_test["test"]["fbeta_at_threshold"])
    assert any(k.startswith("metric.best_val_fbeta") for k in first.tags)
    # The version's model is logged to the trial's own run, the one the sweep's tracker made.
    run = client.get_run(first.run_id)
    assert run.data.tags["raysweep.trial"] == weak_test["trial"]

    # Both sweeps side by side: the strong one's best is chosen, beats the champion on test, takes the alias.
    assert cli.main(["champion", f"{results}/*"]) == 0
    out = capsys.readouterr().out
    strong_test = json.loads((strong / "test_evaluation.json").read_text())["champion"]
    assert strong_test["test"]["fbeta_at_threshold"] > weak_test["test"]["fbeta_at_threshold"], "the stump must lose"
    assert out.index(strong.name) < out.index(weak.name) and "registered: " in out
    second = client.get_model_version_by_alias(name, "champion")
    assert int(second.version) == 2 and second.tags["raysweep.trial"] == strong_test["trial"]
    record = json.loads(second.tags["raysweep.record"])
    assert record["replaced"] == 1 and record["margin"] == pytest.approx(
        strong_test["test"]["fbeta_at_threshold"] - weak_test["test"]["fbeta_at_threshold"])

    # The weak one again: worse on the same test split, so the champion stays, and by how much is said.
    assert cli.main(["champion", str(weak)]) == 0
    out = capsys.readouterr().out
    short = strong_test["test"]["fbeta_at_threshold"] - weak_test["test"]["fbeta_at_threshold"]
    assert "rejected:" in out and f"falls short by {short:.4g}" in out and "version 2" in out
    assert int(client.get_model_version_by_alias(name, "champion").version) == 2
    assert len(client.search_model_versions(f"name = '{name}'")) == 2
    assert cli.main(["report", str(weak)]) == 0
    page = (weak / "report.html").read_text()
    assert "<h2>Champion</h2>" in page and "falls short by" in page

    # The history, and the champion predicting from the registry.
    assert cli.main(["champion", "--show"]) == 0
    shown = capsys.readouterr().out
    assert name in shown and strong_test["trial"] in shown and weak_test["trial"] in shown
    assert cli.main(["predict", "--model", f"registry:{name}", "--data", str(table), "--split", "test"]) == 0
    out = capsys.readouterr().out
    assert "is version 2" in out and "114 predictions" in out and "test_auc " in out


def test_experiments_on_other_data_or_too_old_are_left_out_with_the_reason(sweeps, tmp_path, capsys):
    results, weak, strong = sweeps
    other = tmp_path / "other_data"
    shutil.copytree(weak, other)
    record = json.loads((other / experiment.DATA_FINGERPRINT_FILE).read_text())
    (other / experiment.DATA_FINGERPRINT_FILE).write_text(json.dumps({**record, "val": "0" * 64}))
    old = tmp_path / "old"
    shutil.copytree(strong, old)
    runs = json.loads((old / experiment.PROVENANCE_FILE).read_text())
    runs[0]["started"] = (datetime.now(timezone.utc) - timedelta(days=30)).isoformat(timespec="seconds")
    (old / experiment.PROVENANCE_FILE).write_text(json.dumps(runs))
    unmarked = tmp_path / "unmarked"
    shutil.copytree(weak, unmarked)
    (unmarked / experiment.DATA_FINGERPRINT_FILE).unlink()

    dirs, _ = champions.gather([str(strong), str(other), str(old), str(unmarked)])
    found = champions.candidates(dirs, metric=None, mode=None, since=timedelta(days=14))
    assert (found.metric, found.mode) == ("val_fbeta", "max")
    assert [c.experiment_dir for c in found.comparable] == [strong.resolve()]
    reasons = {c.experiment_dir.name: c.left_out for c in found.left_out}
    assert "validated on other data" in reasons["other_data"] and "older than 14d" in reasons["old"]
    assert "records no data fingerprint" in reasons["unmarked"]


def test_a_folder_registry_without_mlflow(sweeps, table, tmp_path, capsys):
    results, weak, strong = sweeps
    registry = tmp_path / "registry"
    assert cli.main(["champion", str(strong), "--registry", str(registry), "--name", "cancer"]) == 0
    capsys.readouterr()
    kept = json.loads((registry / "registry.json").read_text())["models"]["cancer"]
    assert kept["champion"] == 1 and (registry / kept["versions"][0]["model"] / "model_card.json").is_file()
    assert cli.main(["predict", "--model", "registry:cancer", "--registry", str(registry), "--data", str(table)]) == 0
    assert "is version 1" in capsys.readouterr().out
    assert cli.main(["predict", "--model", "registry:nope", "--registry", str(registry), "--data", str(table)]) == 2
    err = capsys.readouterr().err
    assert "no registered model 'nope'" in err and "cancer" in err and "Traceback" not in err

    # The same trial again: the champion already, nothing new.
    assert cli.main(["champion", str(strong), "--registry", str(registry), "--name", "cancer"]) == 0
    assert "already the champion: " in capsys.readouterr().out
    assert len(json.loads((registry / "registry.json").read_text())["models"]["cancer"]["versions"]) == 1
    # A champion scored on another test split cannot be weighed against: exit 1, nothing registered.
    contents = json.loads((registry / "registry.json").read_text())
    contents["models"]["cancer"]["versions"][0]["record"]["data"]["test"] = "0" * 64
    (registry / "registry.json").write_text(json.dumps(contents))
    assert cli.main(["champion", str(weak), "--registry", str(registry), "--name", "cancer"]) == 1
    assert "cannot be compared" in capsys.readouterr().err
    assert len(json.loads((registry / "registry.json").read_text())["models"]["cancer"]["versions"]) == 1


def test_a_metric_given_alone_takes_its_own_direction_and_a_typo_is_one_error(sweeps, tmp_path, capsys):
    results, weak, strong = sweeps
    registry = str(tmp_path / "registry")
    assert cli.main(["champion", str(strong), str(weak), "--metric", "val_auc", "--registry", registry]) == 0
    out = capsys.readouterr().out
    assert "by val_auc (max)" in out
    assert cli.main(["champion", str(strong), "--metric", "val_acu", "--registry", registry]) == 2
    err = capsys.readouterr().err
    assert err.count("error:") == 1 and "Did you mean 'val_auc'?" in err
    assert cli.main(["champion", str(strong), "--metric", "val_auc", "--mode", "min", "--registry", registry]) == 2
    assert "val_auc is better when higher" in capsys.readouterr().err


def test_a_second_look_at_a_scored_test_split_is_refused_without_again(sweeps, tmp_path, capsys):
    results, weak, strong = sweeps
    looked = tmp_path / "looked"
    shutil.copytree(strong, looked)
    record = json.loads((looked / "test_evaluation.json").read_text())
    record["champion"]["trial"] = "another_trial"   # the test split was scored for another trial before
    (looked / "test_evaluation.json").write_text(json.dumps(record))
    registry = tmp_path / "registry"
    assert cli.main(["champion", str(looked), "--registry", str(registry)]) == 2
    err = capsys.readouterr().err
    assert "was scored on its test split already" in err and "--again" in err and not registry.exists()
    assert cli.main(["champion", str(looked), "--registry", str(registry), "--again"]) == 0
    assert "registered: " in capsys.readouterr().out
