"""What a dataset cannot teach or score is said before the sweep, with the metrics it leaves NaN."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from raysweep import cli
from raysweep.analysis import store
from raysweep.datasets import glideator, teachability
from raysweep.training import metrics

SEEN = {"train": "all 6 rows seen", "val": "all 4 rows seen"}


def warn(samples, meta, task):
    return teachability.warnings(samples, meta, task, SEEN)


def test_a_binary_val_split_of_one_class_has_no_auc():
    meta = {"columns": {"labels": "labels"}, "target_names": ["rain"]}
    found = warn({"train": {"labels": np.array([0, 1, 0, 1, 1, 0.])}, "val": {"labels": np.zeros(4)}}, meta, "binary")
    (only,) = found
    assert only.text.startswith("the val split has no positive rows of 'rain' (all 4 rows seen): val_auc, "
                                "val_average_precision, val_fbeta are undefined (NaN) in every trial")
    assert teachability.undefined_metrics(found)["val_auc"] == only.text


def test_a_val_split_without_negatives_leaves_only_the_auc_undefined():
    meta = {"columns": {"labels": "labels"}, "target_names": ["rain"]}
    (only,) = warn({"train": {"labels": np.array([0, 1, 0, 1, 1, 0.])}, "val": {"labels": np.ones(4)}}, meta, "binary")
    assert only.undefined == ("val_auc",) and "val_auc is undefined (NaN) in every trial" in only.text
    scores = metrics.for_task("binary", np.ones((4, 1)), np.array([[0.9], [0.8], [0.7], [0.6]]))
    assert np.isnan(scores["val_auc"]) and not np.isnan(scores["val_average_precision"])


def test_r2_of_a_constant_target_is_undefined():
    scores = metrics.regression(np.ones(4), np.array([1.0, 1.1, 0.9, 1.0]))
    assert np.isnan(scores["r2"]) and scores["mae"] == pytest.approx(0.05)
    assert metrics.regression(np.array([[1.0, 0.0], [1.0, 2.0]]), np.array([[1.0, 0.0], [1.0, 2.0]]))["r2"] == 1.0


def test_multilabel_labels_without_positives_are_named():
    meta = {"columns": {"labels": "labels"}, "target_names": ["a", "b"]}
    labels = np.array([[1, 0], [0, 0], [1, 0], [0, 0]])
    (train, val) = warn({"train": {"labels": labels}, "val": {"labels": labels}}, meta, "multilabel")
    assert "the train split has no positive rows of 'b'" in train.text and not train.undefined
    assert "leave it out of their mean over labels" in val.text and not val.undefined


def test_multiclass_classes_missing_from_val():
    meta = {"columns": {"labels": "labels"}, "classes": ["cat", "dog", "eel"]}
    found = warn({"train": {"labels": np.array([0, 1, 2, 0, 1, 2])}, "val": {"labels": np.array([0, 1, 0, 1])}},
                 meta, "multiclass")
    assert [w.text for w in found] == ["class(es) 'eel' are in the train split but not in val (all 4 rows seen): "
                                       "validation cannot score them"]
    (one,) = warn({"train": {"labels": np.array([0, 1, 2, 0, 1, 2])}, "val": {"labels": np.zeros(4)}}, meta, "multiclass")
    assert one.text.startswith("the val split holds one class only, 'cat'") and one.undefined == ("val_fbeta",)


def test_a_constant_target_and_constant_features():
    meta = {"columns": {"labels": "labels", "features": "features"}, "target_names": ["y"],
            "feature_names": ["x1", "x2", "x3"]}
    features = np.array([[1.0, 5.0, 0.0], [2.0, 5.0, 1.0], [3.0, 5.0, 0.0]])
    found = warn({"train": {"labels": np.array([1.0, 2.0, 3.0]), "features": features},
                  "val": {"labels": np.ones(4), "features": features}}, meta, "regression")
    texts = [w.text for w in found]
    assert "the val split's target 'y' is constant (all 4 rows seen): val_r2 is undefined (NaN) in every trial" in texts
    assert any(t.startswith("the train split's feature(s) 'x2' are constant") for t in texts)
    assert teachability.undefined_metrics(found) == {"val_r2": texts[0]}


def test_data_that_can_teach_raises_nothing():
    meta = {"columns": {"labels": "labels", "features": "features"}, "feature_names": ["x1", "x2"]}
    rng = np.random.default_rng(0)
    samples = {s: {"labels": np.array([0, 1] * 3, dtype=float), "features": rng.normal(size=(6, 2))}
               for s in ("train", "val")}
    assert warn(samples, meta, "binary") == []


# --- through the commands ------------------------------------------------------------------

def test_data_validate_and_rank_say_what_the_data_cannot_score(tmp_path, capsys, raw_spec):
    """The Glideator generator with few days writes no positive day (it said nothing before)."""
    data = tmp_path / "few_days"
    assert cli.main(["data", "glideator", "--out", str(data), "--sites", "4", "--days", "60"]) == 0
    err = capsys.readouterr().err
    assert "warning: the val split has no positive rows of any of its 11 labels" in err
    assert "val_auc, val_average_precision, val_fbeta are undefined (NaN) in every trial" in err
    raw_spec["data"]["path"] = str(data)
    raw_spec["fixed"]["batch_size"] = 32
    raw_spec.update(metric="val_auc", mode="max")
    spec_file = tmp_path / "spec.yaml"
    spec_file.write_text(yaml.safe_dump(raw_spec))
    assert cli.main(["validate", str(spec_file)]) == 0
    out = capsys.readouterr()
    assert "OK." in out.out and f"warning: {spec_file}: data.path: the val split has no positive rows" in out.err


@pytest.mark.slow
def test_a_metric_the_data_leaves_nan_says_why_in_the_store_and_rank(ray_session, tmp_path, capsys, raw_spec):
    data = tmp_path / "few_days"
    glideator.write(data, n_sites=4, n_days=60, seed=0)
    raw_spec["data"]["path"] = str(data)
    raw_spec["fixed"].update(batch_size=32, epochs=1)
    raw_spec.update(metric="val_auc", mode="max")
    spec_file = tmp_path / "spec.yaml"
    spec_file.write_text(yaml.safe_dump(raw_spec))
    assert cli.main(["run", str(spec_file)]) == 0
    err = capsys.readouterr().err
    assert "warning: val_auc is NaN in every trial: the val split has no positive rows of any of its 11 labels" in err
    (experiment_dir,) = (tmp_path / "results").iterdir()
    why = json.loads(store.load(experiment_dir).trials["why_nan"].iloc[0])
    assert why["val_auc"].startswith("the val split has no positive rows") and set(why) >= {"val_auc", "val_fbeta"}
