"""The order grid cells reach the scheduler: seeded and shuffled where a scheduler stops trials
early (a sorted grid fills ASHA's rungs with trials each better than the last), given points first."""

from __future__ import annotations

import pytest

from raysweep import spec
from raysweep.runner import tuning
from raysweep.search import searchers, space
from raysweep.search.searchers import Request, grid_points

WIDTHS = space.Param(name="width", type="grid", values=(8, 16, 32))
RATES = space.Param(name="learning_rate", type="grid", values=(1e-4, 1e-3, 1e-2, 1e-1))
DROPOUT = space.Param(name="dropout", type="uniform", low=0.0, high=0.5)


def request(*, seed=0, shuffle=True, points=(), num_samples=1, params=(WIDTHS, RATES)) -> Request:
    return Request(params=tuple(params), fixed={}, metric="loss", mode="min", seed=seed, points=list(points),
                   max_concurrent=2, num_samples=num_samples, shuffle_grid=shuffle)


def cells(points) -> list[tuple]:
    return [(p["width"], p["learning_rate"]) for p in points]


def test_under_early_stopping_the_grid_comes_in_a_seeded_random_order():
    in_order = cells(grid_points(request(shuffle=False), grid_every=False))
    assert in_order == [(w, r) for w in (8, 16, 32) for r in (1e-4, 1e-3, 1e-2, 1e-1)]
    shuffled = cells(grid_points(request(seed=0), grid_every=False))
    assert sorted(shuffled) == sorted(in_order) and shuffled != in_order
    assert cells(grid_points(request(seed=0), grid_every=False)) == shuffled, "same seed, same order"
    assert cells(grid_points(request(seed=1), grid_every=False)) != shuffled


def test_given_points_come_first_and_take_their_cells_turn():
    given = [{"width": 32, "learning_rate": 1e-3}, {"learning_rate": 1e-2}]   # a whole cell, and part of one
    points = grid_points(request(points=given, num_samples=2), grid_every=False)
    assert points[:2] == given
    rest = cells(points[2:])
    assert len(rest) == 2 * 12 - 1 and rest.count((32, 1e-3)) == 1 and rest.count((8, 1e-2)) == 2


def test_grid_marked_values_repeat_num_samples_times_and_the_rest_is_sampled(raw_spec):
    raw_spec["params"] = {"deep_hidden_units": {"type": "grid", "values": [[16, 8], [32, 16]]},
                          "learning_rate": {"type": "loguniform", "low": 1e-4, "high": 1e-2}}
    raw_spec["fixed"].pop("deep_hidden_units")
    raw_spec["scheduler"] = {"type": "asha", "grace_period": 1}
    s = spec.validate(raw_spec, overrides=["search.num_samples=3"])
    plan = tuning.searcher(s, max_concurrent=2, points=[])
    assert plan.num_samples == 6 == searchers.planned_trials("random", s.params, 3)
    assert plan.param_space["learning_rate"].lower == pytest.approx(1e-4), "the sampled values keep their domain"
    widths = [p["deep_hidden_units"] for p in plan.searcher._points_to_evaluate]
    assert sorted(widths) == ['[16, 8]'] * 3 + ['[32, 16]'] * 3 and widths != sorted(widths)
