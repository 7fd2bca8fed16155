"""Rankings over groups: seeds aggregated per value, the best trial per scientific value."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from raysweep.analysis import leaderboard


@pytest.fixture
def table():
    # Learning rate 1e-3 has the single best trial (a lucky seed) but the worse mean.
    rows = [(1e-3, 0, 0.10), (1e-3, 1, 0.30), (1e-2, 0, 0.15), (1e-2, 1, 0.16), (1e-1, 0, math.nan)]
    frame = pd.DataFrame(rows, columns=["learning_rate", "seed", "best_val_loss"])
    frame["arch"] = [[8, 4], [8, 4], [16, 8], [16, 8], [16, 8]]
    return frame.sort_values("best_val_loss", na_position="last").reset_index(drop=True)


def test_group_by_ranks_on_the_mean_over_seeds(table):
    groups = leaderboard.group_by(table, "learning_rate", "val_loss", "min")
    assert groups["learning_rate"].tolist() == [1e-2, 1e-3, 1e-1]
    first = groups.iloc[0]
    assert first["mean_val_loss"] == pytest.approx(0.155) and first["std_val_loss"] == pytest.approx(0.00707, rel=1e-2)
    assert (first["trials"], first["ok"]) == (2, 2)
    assert groups.iloc[2]["ok"] == 0 and math.isnan(groups.iloc[2]["mean_val_loss"])


def test_best_per_scientific_value_keeps_each_values_best_trial(table):
    best = leaderboard.best_per_value(table, ["arch"])
    assert [tuple(a) for a in best["arch"]] == [(8, 4), (16, 8)]
    assert best["best_val_loss"].tolist() == [0.10, 0.15]
