"""Issue 29's "Done when", for real: a two-objective sweep of the trajectory workload from the
shipped spec (search_spaces/trajectory_accuracy_latency.yaml: val_mae against the measured
latency_ms under a latency budget) on a tiny dataset. Every pair is checked: no feasible trial
dominates a member of the front, every other feasible trial is dominated by one, the infeasible
trials rank behind; and `export`, with and without a `--pick`, takes a trial that meets the
constraints at its best epoch.

A deterministic second constraint on the parameter count (`parameters`) makes some trials
infeasible whatever the machine's timings, so the test sees both kinds."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from raysweep import cli, spec
from raysweep.analysis import store
from raysweep.datasets import trajectory as trajectory_data
from raysweep.phases import sweep

pytestmark = pytest.mark.slow
SPEC = "search_spaces/trajectory_accuracy_latency.yaml"
N_TRIALS = 6
MAX_PARAMETERS = 5000   # hidden 8 at any depth, 16 and 32 at one layer fit; deeper 16s and 32s do not
OBJECTIVES = ("at_best_val_mae", "at_best_latency_ms")


@pytest.fixture(scope="module")
def tiny_trajectory(tmp_path_factory):
    """About 1,600 windows of 10 samples per split: 7 batches of 256 an epoch."""
    out = tmp_path_factory.mktemp("trajectory")
    trajectory_data.write(out, seed=5, layers_per_part=3, seconds_per_layer=16.0, sequence_length=10, stride=4,
                          rows_per_shard=512)
    return out


@pytest.fixture(scope="module")
def front_sweep(ray_session, tiny_trajectory, tmp_path_factory):
    overrides = [f"data.path={tiny_trajectory}", f"storage_path={tmp_path_factory.mktemp('front')}",
                 f"search.num_samples={N_TRIALS}", "fixed.epochs=2", "fixed.latency_batches=3",
                 "params.hidden_size={type: choice, values: [8, 16, 32]}",
                 f'constraints=["latency_ms <= 1", "parameters <= {MAX_PARAMETERS}"]']
    return sweep.run(spec.load(SPEC, overrides))


@pytest.fixture(scope="module")
def trials(front_sweep) -> pd.DataFrame:
    return store.load(front_sweep).trials


def point(trial: pd.Series) -> tuple[float, float]:
    return tuple(float(trial[c]) for c in OBJECTIVES)


def dominates(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    """Both objectives minimised: a is no worse on each and better on one."""
    return all(x <= y for x, y in zip(a, b)) and any(x < y for x, y in zip(a, b))


def meets_constraints(trial: pd.Series) -> bool:
    return trial["at_best_latency_ms"] <= 1 and trial["at_best_parameters"] <= MAX_PARAMETERS


def test_every_trial_has_a_point_and_the_constraints_split_them(trials):
    assert len(trials) == N_TRIALS and (trials["status"] == "finished").all(), trials["status"].tolist()
    for column in (*OBJECTIVES, "at_best_parameters"):
        assert trials[column].notna().all() and (trials[column] > 0).all(), column
    assert trials["feasible"].tolist() == [meets_constraints(t) for _, t in trials.iterrows()]
    assert trials["feasible"].any() and not trials["feasible"].all(), \
        "the seed's draws should hold feasible and infeasible trials: " + str(trials["at_best_parameters"].tolist())


def test_no_trial_dominates_a_front_member_and_every_other_feasible_trial_is_dominated(trials):
    feasible = trials[trials["feasible"]]
    front = trials[trials["pareto_rank"] == 1]
    assert len(front) >= 1 and front["feasible"].all()
    for _, member in front.iterrows():
        for _, other in feasible.iterrows():   # every pair, the member with itself included
            assert not dominates(point(other), point(member)), (other["trial"], member["trial"])
    for _, trial in feasible[feasible["pareto_rank"] != 1].iterrows():
        assert any(dominates(point(other), point(trial)) for _, other in feasible.iterrows()), trial["trial"]
    # the infeasible are ranked among themselves, after every feasible trial
    infeasible = trials[~trials["feasible"]]
    assert infeasible["pareto_rank"].min() > feasible["pareto_rank"].max()


def test_the_fronts_are_the_non_dominated_layers(trials):
    """Peeling off the non-dominated feasible trials, then the next layer, gives the store's ranks."""
    left = {t["trial"]: point(t) for _, t in trials[trials["feasible"]].iterrows()}
    rank = 1
    while left:
        layer = {t for t, p in left.items() if not any(dominates(q, p) for q in left.values())}
        assert set(trials.loc[trials["pareto_rank"] == rank, "trial"]) == layer, rank
        left = {t: p for t, p in left.items() if t not in layer}
        rank += 1


def test_export_takes_a_feasible_front_member(front_sweep, trials, tmp_path):
    to = tmp_path / "default"
    assert cli.main(["export", str(front_sweep), "--to", str(to)]) == 0
    chosen = trials.set_index("trial").loc[json.loads((to / "model_card.json").read_text())["champion"]["trial"]]
    assert chosen["feasible"] and meets_constraints(chosen) and chosen["pareto_rank"] == 1
    best = trials[trials["feasible"]].sort_values("at_best_val_mae").iloc[0]
    assert chosen["at_best_val_mae"] == best["at_best_val_mae"], "the feasible front's best on the first objective"


def test_export_pick_honours_its_budget_and_the_spec_constraints(front_sweep, trials, tmp_path):
    feasible = trials[trials["feasible"]]
    budget = float(feasible["at_best_latency_ms"].median()) * 1.0001   # about half the feasible trials meet it
    to = tmp_path / "fast"
    assert cli.main(["export", str(front_sweep), "--to", str(to), "--pick",
                     f"min val_mae where latency_ms <= {budget}"]) == 0
    card = json.loads((to / "model_card.json").read_text())
    chosen = trials.set_index("trial").loc[card["champion"]["trial"]]
    assert chosen["feasible"] and meets_constraints(chosen), "the spec's constraints at its best epoch"
    assert chosen["at_best_latency_ms"] <= budget, "the pick's own constraint at its best epoch"
    meeting = feasible[feasible["at_best_latency_ms"] <= budget]
    assert math.isclose(chosen["at_best_val_mae"], meeting["at_best_val_mae"].min())
    # an infeasible trial never wins, however accurate it is
    assert not (trials[~trials["feasible"]]["trial"] == card["champion"]["trial"]).any()
