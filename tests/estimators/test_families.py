"""The model families on tables scikit-learn ships: fit, report, resume, save and load, and what a
spec may ask of them (the sweep, export and predict are in test_families_sweep.py)."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
import skops.io
from sklearn import metrics as sk_metrics

from raysweep import spec
from raysweep.analysis import champion
from raysweep.datasets import shards
from raysweep.estimators import checkpoint, lightgbm_boosting, xgboost_boosting
from raysweep.estimators.registry import FAMILIES
from raysweep.training.metrics import THRESHOLD
from raysweep.workloads import families

from conftest import import_bundled

SPEC = "search_spaces/model_families_optuna.yaml"


def splits(data: Path):
    meta = shards.read_meta(data)
    return meta, champion.read_columns(data, meta, "train"), champion.read_columns(data, meta, "val")


def fit(data: Path, **config) -> list[tuple[dict, Path]]:
    """Every report of one trial of `config`, with the checkpoint directory it wrote."""
    meta, train, val = splits(data)
    reports = []

    def report(metrics, write):
        directory = Path(tempfile.mkdtemp())
        write(directory)
        reports.append((metrics, directory))

    families.fit_trial(families.Config(**config), train, val, report, meta=meta, threads=1)
    return reports


@pytest.mark.parametrize("family", list(FAMILIES))
def test_each_family_fits_reports_and_its_checkpoint_predicts_the_same(cancer, family, capsys):
    reports = fit(cancer, family=family, epochs=3, rounds_per_epoch=5, fbeta_beta=0.5, class_weight="balanced")
    boosted = FAMILIES[family].BOOSTED
    assert [m["epoch"] for m, _ in reports] == ([1, 2, 3] if boosted else [3])   # the others: once, at the last
    if boosted:
        assert [m["rounds"] for m, _ in reports] == [5, 10, 15]
    metrics, directory = reports[-1]
    assert metrics["val_auc"] > 0.9 and 0 < metrics[THRESHOLD] < 1
    # The checkpoint is the family's native file, and what it predicts gives the reported metrics.
    assert {p.name for p in directory.iterdir()} == {FAMILIES[family].FILE, checkpoint.STATE_FILE}
    name, model, state = checkpoint.load(directory)
    meta, _, val = splits(cancer)
    probs = families.predict(model, name, val, meta)[:, 0]
    assert sk_metrics.roc_auc_score(val["labels"].ravel(), probs) == pytest.approx(metrics["val_auc"])
    assert state["metrics"]["val_fbeta"] == metrics["val_fbeta"]
    assert sk_metrics.fbeta_score(val["labels"].ravel(), probs >= metrics[THRESHOLD], beta=0.5) == \
        pytest.approx(metrics["val_fbeta"])
    assert capsys.readouterr().out == ""   # the libraries print nothing in a trial


@pytest.mark.parametrize("family", ["lightgbm", "xgboost"])
def test_a_resumed_booster_continues_where_its_checkpoint_left_off(cancer, family):
    """Three epochs in one go equal two, then one more from the second's checkpoint."""
    straight = fit(cancer, family=family, epochs=3, rounds_per_epoch=4)
    meta, train, val = splits(cancer)
    resumed = []
    families.fit_trial(families.Config(family=family, epochs=3, rounds_per_epoch=4), train, val,
                       lambda m, write: resumed.append(m), meta=meta, threads=1, resume=straight[1][1])
    assert [m["epoch"] for m in resumed] == [3] and resumed[0]["rounds"] == 12
    assert resumed[0]["val_loss"] == pytest.approx(straight[2][0]["val_loss"], rel=1e-6)


def test_the_same_seed_gives_the_same_metrics_and_threads_reach_the_library(cancer):
    for family in ("random_forest", "lightgbm", "xgboost"):
        one, two = fit(cancer, family=family, epochs=2, seed=3), fit(cancer, family=family, epochs=2, seed=3)
        assert [m["val_loss"] for m, _ in one] == [m["val_loss"] for m, _ in two]
    meta, train, _ = splits(cancer)
    table = families.table(train, meta)
    assert lightgbm_boosting.parameters(families.Config(), table, threads=3)["num_threads"] == 3
    assert xgboost_boosting.parameters(families.Config(), table, threads=3)["nthread"] == 3
    forest = FAMILIES["random_forest"].fit(families.Config(forest_trees=5), table, threads=2, rounds=0)
    assert forest.n_jobs == 2


def test_multiclass_and_regression_tables(tmp_path):
    wine = import_bundled("wine", "multiclass", tmp_path / "wine")
    for family in FAMILIES:
        (metrics, _), *_ = fit(wine, family=family, epochs=1, rounds_per_epoch=20)[-1:]
        assert metrics["val_accuracy"] > 0.8, family
    diabetes = import_bundled("diabetes", "regression", tmp_path / "diabetes")
    for family in ("random_forest", "lightgbm", "xgboost"):
        (metrics, _), *_ = fit(diabetes, family=family, epochs=1, rounds_per_epoch=30, xgb_learning_rate=0.1)[-1:]
        assert 0 < metrics["val_r2"] < 1 and metrics["val_mae"] > 0, family
    with pytest.raises(spec.SpecError) as err:
        spec.load(SPEC, [f"data.path={diabetes}", "metric=val_r2"])
    text = "\n".join(err.value.problems)
    assert "params.family: logistic_regression does not fit a regression table" in text


def test_a_spec_gets_one_clear_line_for_what_the_families_cannot_do(cancer, tmp_path):
    spec.load(SPEC, [f"data.path={cancer}"])   # the ready spec fits a binary table
    bad = [f"data.path={cancer}", "params.family.when.lightgbm.xgb_max_depth={type: randint, low: 2, high: 4}",
           "resources.workers_per_trial=2", "resources.gpus_per_worker=1", "metric=val_r2",
           "params.fbeta_beta={type: uniform, low: 0.5, high: 2}", "fixed.fbeta_beta=0"]
    with pytest.raises(spec.SpecError) as err:
        spec.load(SPEC, bad)
    text = "\n".join(err.value.problems)
    assert "params.family.when.lightgbm.xgb_max_depth: xgb_max_depth is a xgboost parameter; move it under when.xgboost" in text
    assert "resources: the model families fit in the trial process" in text
    assert "resources.gpus_per_worker: the model families fit on CPUs" in text
    assert "params.fbeta_beta: the beta defines val_fbeta" in text and "fixed.fbeta_beta: must be > 0" in text
    assert "metric: a binary table reports val_loss" in text


def test_a_forest_file_loads_without_raysweep_and_refuses_other_untrusted_types(cancer):
    (_, directory), = fit(cancer, family="random_forest", epochs=1, forest_trees=5)
    model = directory / FAMILIES["random_forest"].FILE
    snippet = ("import skops.io, numpy\n"
               f"m = skops.io.load({str(model)!r}, trusted=['sklearn.tree._tree.Tree'])\n"
               "print(m.predict_proba(numpy.zeros((2, 30))).shape)")
    result = subprocess.run([sys.executable, "-c", snippet], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "(2, 2)"
    with pytest.raises(Exception, match="Untrusted types"):
        skops.io.load(model)   # without naming the tree storage, skops refuses it
    assert np.isfinite(FAMILIES["random_forest"].load(model).predict_proba(np.zeros((1, 30)))).all()
