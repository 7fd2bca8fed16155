"""The held-out test split: imported apart, never read by a sweep or its analysis, scored once by
`evaluate`; and the soft-voting ensemble, exported and scored like a champion."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pyarrow as pa
import pytest

from raysweep import cli
from raysweep.analysis import store
from raysweep.datasets import shards, tabular

from conftest import import_bundled, write_spec

SPEC = "search_spaces/model_families_optuna.yaml"


def test_a_test_fraction_holds_out_rows_or_the_last_groups(tmp_path):
    table = pa.table({"x": np.arange(100.0), "day": np.repeat(np.arange(20), 5), "y": np.arange(100) % 2})
    names, info = tabular._split(table, None, 0.2, 0, test_fraction=0.1)
    assert (names == "test").sum() == 10 and (names == "val").sum() == 20
    same_val, _ = tabular._split(table, None, 0.2, 0)
    assert ((names == "val") == (same_val == "val")).all()   # a test split leaves val as it was
    names, info = tabular._split(table, "day", 0.2, 0, test_fraction=0.1)
    assert info["test_values"] == ["18", "19"] and info["val_values"] == ["14", "15", "16", "17"]
    assert set(table["day"].to_numpy()[names == "test"]) == {18, 19}   # the latest days, after val's
    few_groups = pa.table({"x": np.arange(8.0), "site": np.repeat(["a", "b", "c", "d"], 2), "y": np.arange(8) % 2})
    names, info = tabular._split(few_groups, "site", 0.25, 0, test_fraction=0.1)
    assert info["test_values"] == ["d"]   # 0.1 of 4 groups rounds to none: one group all the same
    given = pa.table({"x": np.arange(4.0), "s": ["train", "train", "val", "test"], "y": [0, 1, 0, 1]})
    with pytest.raises(shards.DataError, match="names the splits already; mark the test rows"):
        tabular._split(given, "s", 0.2, 0, test_fraction=0.1)
    with pytest.raises(shards.DataError, match="--test-fraction must lie in"):
        tabular.import_table(tmp_path / "none.csv", tmp_path / "o", target=["y"], task="binary",
                             val_fraction=0.5, test_fraction=0.5)


@pytest.fixture(scope="module")
def held_out(ray_session, tmp_path_factory):
    """A table with a test split whose shards are corrupt while the sweep and its analysis run."""
    root = tmp_path_factory.mktemp("held_out")
    data = root / "cancer"
    import_bundled("breast_cancer", "binary", root / "plain")   # writes root/breast_cancer.csv
    assert cli.main(["data", "import", str(root / "breast_cancer.csv"), "--target", "target", "--task", "binary",
                     "--test-fraction", "0.2", "--out", str(data)]) == 0
    kept = root / "test_kept"
    shutil.copytree(data / "test", kept)
    for shard in (data / "test").iterdir():
        shard.write_bytes(b"not parquet: a sweep that reads the test split fails here")
    raw = {"name": "held_out", "workload": "families", "data": {"path": str(data)}, "metric": "val_fbeta",
           "mode": "max", "fixed": {"epochs": 2, "rounds_per_epoch": 5, "fbeta_beta": 0.5},
           "params": {"family": {"type": "choice", "values": ["logistic_regression", "lightgbm", "xgboost"]}},
           "search": {"algorithm": "grid", "seed": 0}, "scheduler": {"type": "fifo"},
           "resources": {"max_concurrent_trials": 2}, "storage_path": str(root / "results")}
    return data, kept, write_spec(root, raw), root


@pytest.mark.slow   # a real sweep
def test_no_sweep_or_analysis_reads_the_test_split_and_evaluate_scores_it_once(held_out, tmp_path, capsys):
    data, kept, spec_file, root = held_out
    assert cli.main(["validate", str(spec_file)]) == 0
    assert cli.main(["run", str(spec_file)]) == 0
    (experiment_dir,) = (root / "results").iterdir()
    assert set(store.load(experiment_dir).trials["status"]) == {"finished"}
    for command in (["rank", str(experiment_dir)], ["report", str(experiment_dir)],
                    ["export", str(experiment_dir), "--to", str(tmp_path / "champion")],
                    ["ensemble", str(experiment_dir), "--top", "2", "--to", str(tmp_path / "ensemble")]):
        assert cli.main(command) == 0, command
    capsys.readouterr()

    # evaluate reads it: the corrupt shard is one clear error, and nothing is recorded.
    assert cli.main(["evaluate", str(experiment_dir)]) == 2
    err = capsys.readouterr().err
    assert "test" in err and "Traceback" not in err
    assert not (experiment_dir / "test_evaluation.json").exists()

    shutil.rmtree(data / "test")
    shutil.copytree(kept, data / "test")
    assert cli.main(["evaluate", str(experiment_dir), "--model", str(tmp_path / "champion"),
                     "--model", str(tmp_path / "ensemble")]) == 0
    out = capsys.readouterr().out
    assert "the test split (114 rows), scored once" in out
    record = json.loads((experiment_dir / "test_evaluation.json").read_text())
    card = json.loads((tmp_path / "champion" / "model_card.json").read_text())
    assert card["test"]["metrics"] == record["champion"]["test"] and card["test"]["rows"] == 114
    test = record["champion"]["test"]
    assert "val_fbeta" not in test and "fbeta_threshold" not in test   # no val_ metric, no threshold chosen on test
    # F-beta at the threshold chosen on val, as deployed: never above the best over test's own thresholds.
    assert 0.5 < test["fbeta_at_threshold"] <= test["fbeta_at_best_test_threshold"] + 1e-12 <= 1 + 1e-12
    assert 0 < test["threshold_from_val"] < 1
    assert card["test"]["metrics"]["fbeta_at_threshold"] == test["fbeta_at_threshold"]
    ensemble_card = json.loads((tmp_path / "ensemble" / "model_card.json").read_text())
    assert ensemble_card["test"]["metrics"] == record["models"][str(tmp_path / "ensemble")]

    assert cli.main(["evaluate", str(experiment_dir)]) == 2   # once; a second look needs --again
    assert "second validation split" in capsys.readouterr().err
    # An export after evaluate carries the champion's test score in its card.
    assert cli.main(["export", str(experiment_dir), "--to", str(tmp_path / "later")]) == 0
    later = json.loads((tmp_path / "later" / "model_card.json").read_text())
    assert later["test"]["metrics"] == record["champion"]["test"]


@pytest.mark.slow   # the sweep of the test above
def test_the_ensemble_votes_with_its_members_and_predicts(held_out, tmp_path, capsys):
    data, _, _, root = held_out
    experiment_dir = next((root / "results").iterdir())
    trials = store.load(experiment_dir).trials.sort_values("best_val_fbeta", ascending=False)
    assert cli.main(["ensemble", str(experiment_dir), "--top", "3", "--to", str(tmp_path / "e")]) == 0
    out = capsys.readouterr().out
    assert "ensemble of 3" in out and ("candidate" in out or "deploy the champion" in out)
    card = json.loads((tmp_path / "e" / "model_card.json").read_text())
    assert [m["trial"] for m in card["ensemble"]["members"]] == trials["trial"].head(3).tolist()
    assert {m["family"] for m in card["ensemble"]["members"]} == {"logistic_regression", "lightgbm", "xgboost"}
    assert card["candidate"] == (card["value"] > trials["best_val_fbeta"].max())
    # predict averages the members: its val score is the card's.
    assert cli.main(["predict", str(tmp_path / "e"), "--data", str(data)]) == 0
    out = capsys.readouterr().out
    assert float(out.split("val_fbeta ")[1].split()[0]) == pytest.approx(card["value"], abs=1e-4)
    assert "decision" in out
    assert cli.main(["ensemble", str(experiment_dir), "--top", "1", "--to", str(tmp_path / "x")]) == 2
    assert "at least 2 members" in capsys.readouterr().err
