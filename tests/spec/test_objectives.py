"""Several objectives and constraints in a spec, and the arithmetic of fronts and constraint values."""

from __future__ import annotations

import math

import pytest

from raysweep import spec
from raysweep.search.objectives import Objective, crowding, fronts, pareto_order, parse_constraint


def problems(raw) -> list[str]:
    with pytest.raises(spec.SpecError) as info:
        spec.validate(raw, source="s.yaml")
    return info.value.problems


def test_one_metric_is_one_objective(raw_spec):
    s = spec.validate(raw_spec, source="s.yaml")
    assert s.objectives == (Objective("val_loss", "min"),) and not s.multi_objective and s.constraints == ()


def test_several_objectives_and_constraints(raw_spec):
    raw_spec.update(metric=["val_loss", "latency_ms"], mode=["min", "min"],
                    constraints=["latency_ms <= 5", "val_auc >= 0.8"])
    raw_spec["fixed"]["measure_latency"] = True
    s = spec.validate(raw_spec, source="s.yaml")
    assert s.multi_objective and (s.metric, s.mode) == ("val_loss", "min")   # schedulers stop on the first
    assert [o.metric for o in s.objectives] == ["val_loss", "latency_ms"]
    assert [c.text for c in s.constraints] == ["latency_ms <= 5", "val_auc >= 0.8"]


@pytest.mark.parametrize("change, says", [
    ({"metric": ["val_loss", "val_auc"], "mode": "min"}, "mode: one mode per metric: metric ['val_loss', 'val_auc'] "
                                                         "takes mode [min, max]"),
    ({"metric": ["val_loss", "val_auc"], "mode": ["min"]}, "one mode per metric"),
    ({"metric": ["val_loss", "val_loss"], "mode": ["min", "min"]}, "metric[1]: val_loss is an objective already"),
    ({"metric": ["val_loss", "val_acu"], "mode": ["min", "max"]}, "metric[1]: glideator does not report 'val_acu'. "
                                                                  "Did you mean 'val_auc'?"),
    ({"metric": ["val_loss", "val_auc"], "mode": ["min", "min"]}, "mode[1]: val_auc is better when higher"),
    ({"metric": []}, "metric: an empty list"),
    ({"metric": ["val_loss", "latency_ms"], "mode": ["min", "min"]}, "metric[1]: glideator does not report "
                                                                     "'latency_ms'"),   # not measured
    ({"constraints": "latency_ms <= 5"}, "constraints: must be a list"),
    ({"constraints": ["val_auc => 0.8"]}, "constraints[0]: 'val_auc => 0.8' is not 'METRIC OP NUMBER'"),
    ({"constraints": ["val_acu >= 0.8"]}, "constraints[0]: glideator does not report 'val_acu'"),
])
def test_each_mistake_is_one_line_with_the_fix(raw_spec, change, says):
    raw_spec.update(change)
    assert any(says in line for line in problems(raw_spec)), problems(raw_spec)


def test_a_searcher_of_one_objective_is_refused_with_those_that_take_several(raw_spec):
    raw_spec.update(metric=["val_loss", "val_auc"], mode=["min", "max"])
    raw_spec["search"]["algorithm"] = "hyperopt"
    assert any("search.algorithm 'hyperopt' optimises one metric; with several objectives use search.algorithm: "
               "random, grid or optuna" in line for line in problems(raw_spec))


def test_latency_measured_after_the_last_epoch_only_cannot_be_an_objective(raw_spec):
    raw_spec.update(metric=["val_loss", "latency_ms"], mode=["min", "min"])
    raw_spec["fixed"].update(measure_latency=True, latency_every="last")
    assert any("fixed.latency_every: last measures latency_ms after the last epoch only" in line
               for line in problems(raw_spec))
    raw_spec.update(metric="val_loss", mode="min")   # as a reported number only, it may
    assert spec.validate(raw_spec, source="s.yaml").fixed["latency_every"] == "last"


def test_constraint_values_are_optunas():
    budget = parse_constraint("latency_ms <= 5")
    assert budget.violation(4) == -1 and budget.violation(6) == 1 and budget.holds(5)
    assert budget.violation(float("nan")) == math.inf and not budget.holds(None)
    floor = parse_constraint("val_auc > 0.8")
    assert not floor.holds(0.8) and floor.violation(0.8) > 0 and floor.violation(0.9) < 0


def test_fronts_crowding_and_the_order_with_infeasible_points_last():
    two = (Objective("loss", "min"), Objective("auc", "max"))
    points = [(1, 0.5), (2, 0.9), (3, 0.8), (0.5, 0.4), (1, float("nan"))]
    assert fronts(points, two) == [1, 1, 2, 1, 2]
    ends = crowding([(0.5, 0.4), (1, 0.5), (2, 0.9)], two)
    assert ends[0] == ends[2] == math.inf and 0 < ends[1] < math.inf
    order, front, _ = pareto_order(points, two, [True, False, True, True, True])
    assert order[-1] == 1 and front[1] > max(front[i] for i in (0, 2, 3, 4))   # infeasible after every feasible


def test_the_kept_best_epoch_follows_the_first_objective_unless_the_spec_says_otherwise(raw_spec):
    raw_spec.update(metric=["val_auc", "val_ece"], mode=["max", "min"])
    assert spec.validate(raw_spec, source="s.yaml").fixed["early_stopping_metric"] == "val_auc"
    raw_spec["fixed"]["early_stopping_metric"] = "val_loss"   # said: kept
    assert spec.validate(raw_spec, source="s.yaml").fixed["early_stopping_metric"] == "val_loss"
    raw_spec.update(metric="val_loss", mode="min")
    del raw_spec["fixed"]["early_stopping_metric"]
    assert "early_stopping_metric" not in spec.validate(raw_spec, source="s.yaml").fixed   # the default already


@pytest.mark.parametrize("key", ["latency_batch_size", "latency_batches"])
def test_latency_settings_take_at_least_one(raw_spec, key):
    raw_spec["fixed"].update(measure_latency=True, **{key: 0})
    assert any(f"fixed.{key}: must be at least 1, got 0" in line for line in problems(raw_spec))
