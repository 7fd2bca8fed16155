"""Warnings that make a ranking trustworthy: edges of the space, failures, intervals of means."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from raysweep.analysis import diagnose, leaderboard, store, trial_rows
from raysweep.search.space import Param

LR = Param("learning_rate", "loguniform", low=1e-4, high=1e-1)
DROPOUT = Param("dropout", "uniform", low=0.0, high=0.5)
WIDTH = Param("width", "choice", values=(32, 64, 128, 256))


def board(rows):
    frame = pd.DataFrame(rows, columns=["learning_rate", "dropout", "width", "best_val_loss", "status"])
    return frame.sort_values("best_val_loss", na_position="last").reset_index(drop=True)


def test_best_trials_at_an_edge_are_named_with_the_fix():
    table = board([(0.09, 0.25, 64, 0.1, "finished"), (0.08, 0.1, 128, 0.11, "finished"),
                   (0.07, 0.4, 256, 0.12, "finished"), (1e-3, 0.2, 64, 0.3, "finished"),
                   (1e-4, 0.3, 32, 0.5, "finished")])
    warnings = diagnose.edge_warnings(table, (LR, DROPOUT, WIDTH), "val_loss")
    assert len(warnings) == 1, warnings
    assert "learning_rate at the high edge of its range (0.0001 .. 0.1)" in warnings[0]
    assert "widen params.learning_rate.high" in warnings[0]


def test_choice_edges_and_a_spread_optimum():
    at_top = board([(1e-3, 0.01, 256, 0.1, "finished"), (2e-3, 0.02, 256, 0.2, "finished"),
                    (3e-3, 0.01, 256, 0.3, "finished"), (1e-2, 0.3, 32, 0.5, "finished")])
    warnings = diagnose.edge_warnings(at_top, (LR, DROPOUT, WIDTH), "val_loss")
    assert any("width = 256, the highest of its values" in w for w in warnings)
    assert any("dropout at the low edge" in w for w in warnings)
    spread = board([(1e-3, 0.2, 64, 0.1, "finished"), (1e-2, 0.3, 128, 0.2, "finished"),
                    (3e-3, 0.25, 64, 0.3, "finished")])
    assert diagnose.edge_warnings(spread, (LR, DROPOUT, WIDTH), "val_loss") == []


def test_many_failures_are_called_out():
    table = board([(1e-3, 0.2, 64, 0.1, "finished"), (1e-1, 0.2, 64, math.nan, "diverged"),
                   (9e-2, 0.2, 64, math.nan, "diverged"), (1e-3, 0.2, 64, math.nan, "errored")])
    message = diagnose.failure_warning(table)
    assert message.startswith("3 of 4 trials failed (2 diverged, 1 errored)")
    assert "learning-rate range" in message
    assert diagnose.failure_warning(table.head(1)) is None


def test_ci95_of_a_mean_uses_students_t():
    assert diagnose.ci95_halfwidth(1.0, 2) == pytest.approx(12.706 / math.sqrt(2))
    assert diagnose.ci95_halfwidth(2.0, 10) == pytest.approx(2.262 * 2 / math.sqrt(10))
    assert diagnose.ci95_halfwidth(1.0, 100) == pytest.approx(1.96 / 10)
    assert math.isnan(diagnose.ci95_halfwidth(1.0, 1))


def test_configurations_repeated_over_seeds_rank_on_their_mean():
    rows = [(1e-3, 0, 0.10), (1e-3, 1, 0.30), (1e-3, 2, 0.20), (1e-2, 0, 0.15), (1e-2, 1, 0.16), (1e-2, 2, 0.17)]
    table = pd.DataFrame(rows, columns=["learning_rate", "seed", "best_val_loss"]).sort_values("best_val_loss")
    keys = leaderboard.repeats_over(table, ["learning_rate", "seed"])
    assert keys == ["learning_rate"]
    groups = leaderboard.group_by(table, keys, "val_loss", "min")
    assert groups["learning_rate"].tolist() == [1e-2, 1e-3]
    first = groups.iloc[0]
    assert first["ci95_low"] == pytest.approx(0.16 - 4.303 * 0.01 / math.sqrt(3))
    assert first["ci95_high"] == pytest.approx(0.16 + 4.303 * 0.01 / math.sqrt(3))
    assert leaderboard.repeats_over(table.drop_duplicates("learning_rate"), ["learning_rate", "seed"]) is None


def test_roc_points_integrate_to_the_auc():
    import numpy as np

    from raysweep.analysis import plots
    from raysweep.training import metrics

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 500)
    scores = labels + rng.normal(0, 1.0, 500)
    fpr, tpr = plots._roc(labels, scores)
    assert (fpr[0], tpr[0], fpr[-1], tpr[-1]) == (0, 0, 1, 1)
    assert np.trapezoid(tpr, fpr) == pytest.approx(metrics.roc_auc(labels, scores), abs=1e-9)


def test_the_champion_is_never_a_failed_trial(monkeypatch, raw_spec):
    """A trial that diverged after a good first epoch can top the table; export skips it."""
    from raysweep import experiment, spec
    from raysweep.analysis import champion

    table = pd.DataFrame({"rank": [1, 2, 3], "trial": ["t1", "t2", "t3"], "learning_rate": [1.0, 0.01, 0.001],
                          "best_val_loss": [0.05, 0.1, 0.2], "status": ["diverged", "finished", "errored"]})
    trials = pd.DataFrame({"trial": ["t1", "t2", "t3"], "learning_rate": [1.0, 0.01, 0.001],
                           "epochs": [3, 3, 3], "status": table["status"]})
    monkeypatch.setattr(experiment, "load_spec", lambda d: spec.validate(raw_spec))
    monkeypatch.setattr(leaderboard, "leaderboard", lambda *a, **k: table)
    monkeypatch.setattr(store, "load", lambda d: store.Results(trials, pd.DataFrame()))
    best = champion.select("unused")
    assert (best.trial, best.value, best.config) == ("t2", 0.1, {"learning_rate": 0.01, "epochs": 3})
    monkeypatch.setattr(leaderboard, "leaderboard", lambda *a, **k: table[table["status"] != "finished"])
    with pytest.raises(spec.SpecError, match="no trial that did not fail"):
        champion.select("unused")


def test_failures_are_grouped_by_cause():
    trials = pd.DataFrame({"status": ["errored", "errored", "diverged", "finished", "errored"],
                           "error": ["KeyError: 'x' (compute_loss, a.py:3)", "KeyError: 'x' (compute_loss, a.py:3)",
                                     "DivergedError: train_loss became nan", "", None]})
    assert diagnose.failure_groups(trials) == ["2 errored: KeyError: 'x' (compute_loss, a.py:3)",
                                               "1 diverged: DivergedError: train_loss became nan",
                                               "1 errored: no error text"]
    assert not diagnose.all_failed(trials) and diagnose.all_failed(trials[trials["status"] != "finished"])
    assert "Most often: 2 errored: KeyError" in diagnose.failure_warning(trials.drop(index=2))


@pytest.mark.parametrize("error, status", [
    ("ray.exceptions.OutOfMemoryError: Task was killed due to the node running low on memory.", "out of memory"),
    ("ray.exceptions.ActorDiedError: The actor died ... Worker exit type: NODE_OUT_OF_MEMORY", "out of memory"),
    ("torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB", "out of memory"),
    ("raysweep.training.loop.DivergedError: train_loss became nan", "diverged"),
    ("KeyError: 'features'", "errored"),
])
def test_how_a_trial_failed_is_read_from_its_error(error, status):
    assert trial_rows.stop_reason("ERROR", 1, 4, error, "ASHA", patience_ran_out=False) == status
    assert trial_rows.stop_reason("ERROR", 1, 4, error, "ASHA", patience_ran_out=False, stalled=True) == "stalled"


def test_out_of_memory_comes_with_what_to_lower():
    trials = pd.DataFrame({"status": ["out of memory"], "error": ["OutOfMemoryError: killed"]})
    assert diagnose.failure_groups(trials) == [
        "1 out of memory: OutOfMemoryError: killed; lower batch_size, or run fewer trials at once "
        "(resources.max_concurrent_trials)"]


def test_failures_alike_but_for_numbers_are_one_group():
    trials = pd.DataFrame({"status": ["diverged"] * 3, "error": [
        "DivergedError: train_loss became nan at epoch 3, step 7 (learning_rate=0.5)",
        "DivergedError: train_loss became nan at epoch 1, step 2 (learning_rate=1.2e-01)",
        "DivergedError: train_loss became inf at epoch 2, step 9 (learning_rate=0.9)"]})
    assert diagnose.failure_groups(trials) == [
        "2 diverged: DivergedError: train_loss became nan at epoch 3, step 7 (learning_rate=0.5)",
        "1 diverged: DivergedError: train_loss became inf at epoch 2, step 9 (learning_rate=0.9)"]
