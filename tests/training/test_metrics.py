"""Precision-recall metrics agree with scikit-learn's on random scores with ties."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn import metrics as sk
from sklearn.metrics import average_precision_score, fbeta_score, precision_recall_curve

from raysweep.training import loop
from raysweep.training.metrics import (
    BETA_KEY,
    METRICS_BY_TASK,
    THRESHOLD,
    average_precision,
    best_f1,
    best_fbeta,
    fbeta_at,
    for_task,
)
from raysweep.workloads import tabular


@pytest.mark.parametrize("seed", range(20))
def test_average_precision_and_best_f1_match_scikit_learn(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(5, 400))
    labels = rng.random(n) < rng.uniform(0.02, 0.5)
    labels[0] = True
    scores = np.round(rng.random(n) + labels * rng.random(n), int(rng.integers(1, 4)))   # ties
    assert average_precision(labels, scores) == pytest.approx(average_precision_score(labels, scores))
    precision, recall, thresholds = precision_recall_curve(labels, scores)
    f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-12)
    best = int(np.argmax(f1[:-1]))
    assert best_f1(labels, scores) == pytest.approx((f1[best], thresholds[best]))


def test_without_positives_the_metrics_are_undefined():
    assert np.isnan(average_precision(np.zeros(5), np.arange(5)))
    assert all(np.isnan(best_f1(np.zeros(5), np.arange(5))))
    assert best_f1(np.array([0, 1, 1]), np.array([0.1, 0.8, 0.9])) == (1.0, 0.8)
    diverged = np.array([0.2, np.nan, 0.9])
    assert np.isnan(average_precision(np.array([0, 1, 1]), diverged)) and np.isnan(best_f1([0, 1, 1], diverged)[0])


@pytest.mark.parametrize("beta", [0.5, 2.0])
@pytest.mark.parametrize("seed", range(10))
def test_best_fbeta_is_scikit_learns_fbeta_at_the_threshold_it_picks(seed, beta):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(5, 400))
    labels = rng.random(n) < rng.uniform(0.02, 0.5)
    labels[0] = True
    scores = np.round(rng.random(n) + labels * rng.random(n), int(rng.integers(1, 4)))
    value, threshold = best_fbeta(labels, scores, beta)
    assert value == pytest.approx(fbeta_score(labels, scores >= threshold, beta=beta))
    precision, recall, thresholds = precision_recall_curve(labels, scores)
    every = (1 + beta**2) * precision * recall / np.maximum(beta**2 * precision + recall, 1e-12)
    assert value == pytest.approx(every[:-1].max()), "no threshold does better"


def test_a_larger_beta_picks_a_lower_threshold_when_recall_costs_precision():
    labels = np.array([1, 0, 1, 0, 0, 1, 0, 0])
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2])
    assert best_fbeta(labels, scores, 0.5)[1] > best_fbeta(labels, scores, 4.0)[1]
    assert best_fbeta(labels, scores, 4.0)[1] == 0.4   # every positive caught


def test_metrics_by_task_match_scikit_learn():
    """for_task's numbers are scikit-learn's for each task, with the beta it is given."""
    rng = np.random.default_rng(3)
    labels = (rng.random(300) < 0.3).astype(float)
    probs = np.clip(labels * 0.3 + rng.random(300) * 0.7, 0, 1)
    out = for_task("binary", labels, probs[:, None], beta=0.5)
    assert set(out) == set(METRICS_BY_TASK["binary"]) | {THRESHOLD}
    assert out["val_loss"] == pytest.approx(sk.log_loss(labels, probs))
    assert out["val_auc"] == pytest.approx(sk.roc_auc_score(labels, probs))
    assert out["val_average_precision"] == pytest.approx(sk.average_precision_score(labels, probs))
    assert out["val_fbeta"] == pytest.approx(sk.fbeta_score(labels, probs >= out[THRESHOLD], beta=0.5))

    classes = rng.integers(0, 4, 200)
    scores = rng.random((200, 4)) + np.eye(4)[classes] * 0.5
    scores /= scores.sum(axis=1, keepdims=True)
    out = for_task("multiclass", classes, scores, beta=2.0)
    assert set(out) == set(METRICS_BY_TASK["multiclass"])
    assert out["val_loss"] == pytest.approx(sk.log_loss(classes, scores))
    assert out["val_accuracy"] == pytest.approx(sk.accuracy_score(classes, scores.argmax(1)))
    assert out["val_fbeta"] == pytest.approx(sk.fbeta_score(classes, scores.argmax(1), beta=2.0, average="macro"))

    true = rng.normal(size=(100, 2))
    predicted = true + rng.normal(scale=0.3, size=(100, 2))
    out = for_task("regression", true, predicted)
    assert out["val_mae"] == pytest.approx(sk.mean_absolute_error(true, predicted))
    assert out["val_r2"] == pytest.approx(sk.r2_score(true, predicted))


def test_beta_reaches_compute_metrics_through_the_meta_the_loop_builds():
    """A config's fbeta_beta changes val_fbeta of a workload whose compute_metrics reads the meta."""
    rng = np.random.default_rng(0)
    labels = (rng.random((400, 1)) < 0.3).astype(np.float32)
    logits = (labels * 1.0 + rng.normal(size=(400, 1))).astype(np.float32)
    meta = {"task": "binary"}
    half = tabular.compute_metrics(logits, labels, {**meta, BETA_KEY: 0.5})
    two = tabular.compute_metrics(logits, labels, {**meta, BETA_KEY: 2.0})
    assert half[THRESHOLD] > two[THRESHOLD]   # precision first picks a stricter threshold
    assert tabular.compute_metrics(logits, labels, meta)["val_fbeta"] == pytest.approx(
        best_fbeta(labels, 1 / (1 + np.exp(-logits)), 1.0)[0])


def test_fbeta_at_a_given_threshold_is_scikit_learns():
    rng = np.random.default_rng(5)
    labels = (rng.random(200) < 0.2).astype(float)
    scores = labels * 0.4 + rng.random(200) * 0.6
    for threshold in (0.3, 0.5, 0.9):
        assert fbeta_at(labels, scores, threshold, 0.5) == pytest.approx(
            fbeta_score(labels, scores >= threshold, beta=0.5, zero_division=0.0))


def test_the_loop_hands_compute_metrics_the_configs_beta():
    """loop.build puts the config's fbeta_beta into the meta that evaluate gives compute_metrics."""
    meta = {"task": "binary", "feature_names": ["x"], "categorical_names": [], "cardinalities": {},
            "target_names": ["y"], "scaler": {"mean": [0.0], "std": [1.0]}, "columns": {"features": "features"}}
    cfg = tabular.Config(fbeta_beta=0.5, hidden_units=(4,))
    trainee = loop.build(tabular, cfg, meta, device=torch.device("cpu"))
    assert trainee.meta[BETA_KEY] == 0.5
    rng = np.random.default_rng(1)
    batch = {"features": torch.from_numpy(rng.normal(size=(300, 1)).astype(np.float32)),
             "labels": torch.from_numpy((rng.random((300, 1)) < 0.3).astype(np.float32))}
    reported = loop.evaluate(tabular, trainee, [batch], device=torch.device("cpu"))
    with torch.no_grad():
        probs = torch.sigmoid(trainee.model(batch)).numpy()
    assert reported["val_fbeta"] == pytest.approx(best_fbeta(batch["labels"].numpy(), probs, 0.5)[0])
