"""The Glideator model, its loss terms and the classification metrics."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from raysweep.training import metrics
from raysweep.workloads import glideator

META = {"n_sites": 5, "feature_names": [f"f{i}" for i in range(7)],
        "target_names": [f"t{k}" for k in range(11)],
        "scaler": {"mean": [0.0] * 7, "std": [1.0] * 7}}


def batch(n=9):
    g = torch.Generator().manual_seed(0)
    return {"site_id": torch.randint(0, 5, (n,), generator=g, dtype=torch.int32),
            "features": torch.randn(n, 7, generator=g),
            "labels": (torch.rand(n, 11, generator=g) > 0.5).float()}


@pytest.mark.parametrize("cross_layers,deep", [(1, (8,)), (3, (16, 8)), (0, ())])
def test_output_shape(cross_layers, deep):
    cfg = glideator.Config(cross_layers=cross_layers, deep_hidden_units=deep, site_embedding_dim=3)
    model = glideator.build_model(cfg, META)
    assert glideator.predict(model, batch()).shape == (9, 11)


def test_monotonicity_penalty_zero_iff_monotone():
    monotone = torch.linspace(3, -3, 11).repeat(4, 1)
    assert glideator.monotonicity_penalty(monotone).item() == 0.0
    rising = monotone.clone()
    rising[:, 5] = 5.0  # P(d > 50 km) above P(d > 40 km)
    assert glideator.monotonicity_penalty(rising).item() > 0.1


def test_loss_adds_each_penalty():
    model = glideator.build_model(glideator.Config(), META)
    b = batch()
    base, _ = glideator.compute_loss(model, b, glideator.Config(l1_lambda=0, l2_lambda=0, monotonicity_lambda=0))
    for key in ("l1_lambda", "l2_lambda", "monotonicity_lambda"):
        cfg = glideator.Config(**{"l1_lambda": 0, "l2_lambda": 0, "monotonicity_lambda": 0, key: 1.0})
        with_penalty, _ = glideator.compute_loss(model, b, cfg)
        assert with_penalty.item() > base.item(), key


def test_standardisation_uses_meta_scaler():
    meta = {**META, "scaler": {"mean": [10.0] * 7, "std": [2.0] * 7}}
    torch.manual_seed(0)
    shifted = glideator.build_model(glideator.Config(), meta)
    b = batch()
    torch.manual_seed(0)
    plain = glideator.build_model(glideator.Config(), META)
    moved = dict(b, features=b["features"] * 2.0 + 10.0)
    assert torch.allclose(glideator.predict(shifted, moved), glideator.predict(plain, b), atol=1e-5)


def test_roc_auc_matches_hand_computation():
    labels = np.array([0, 0, 1, 1, 1])
    scores = np.array([0.1, 0.4, 0.35, 0.8, 0.4])
    # positives vs negatives: (0.35>0.1) + (0.35<0.4) ... pairs won: 0.35:1, 0.8:2, 0.4:1 + tie 0.5 = 4.5 of 6
    assert metrics.roc_auc(labels, scores) == pytest.approx(4.5 / 6)
    assert np.isnan(metrics.roc_auc(np.ones(3), np.arange(3)))
    two = np.stack([labels, 1 - labels], axis=1)
    assert metrics.macro_roc_auc(two, np.stack([scores, -scores], axis=1)) == pytest.approx(4.5 / 6)


def test_expected_calibration_error():
    probs = np.array([0.9, 0.9, 0.1, 0.1])
    assert metrics.expected_calibration_error(np.array([1, 1, 0, 0]), probs) == pytest.approx(0.1)
    assert metrics.expected_calibration_error(np.array([0, 0, 1, 1]), probs) == pytest.approx(0.9)
