"""The shipped accuracy-against-latency spec, for real on the tiny data: Optuna's multi-objective TPE
gets both objectives and the constraint, the loop measures latency_ms every epoch, the store and
rank hold the front, and export picks along it under a latency budget."""

from __future__ import annotations

import json

import cloudpickle
import pytest

from raysweep import cli, spec
from raysweep.analysis import store
from raysweep.phases import sweep

pytestmark = pytest.mark.slow
SPEC = "search_spaces/glideator_pareto.yaml"


@pytest.fixture(scope="module")
def pareto_sweep(ray_session, tiny_data, tmp_path_factory):
    overrides = [f"data.path={tiny_data}", f"storage_path={tmp_path_factory.mktemp('pareto')}",
                 "search.num_samples=4", "fixed.epochs=2", "scheduler.grace_period=1", "fixed.batch_size=64",
                 "fixed.latency_batches=3", "resources.max_concurrent_trials=1"]
    return sweep.run(spec.load(SPEC, overrides))


def test_latency_is_measured_and_the_front_is_in_the_store(pareto_sweep):
    results = store.load(pareto_sweep)
    trials, curves = results.trials, results.curves
    assert len(trials) == 4 and (curves["latency_ms"] > 0).all() and (curves["parameters"] > 0).all()
    # a wider tower has more parameters: the measured count follows the architecture
    sizes = trials.assign(first=trials["deep_hidden_units"].map(lambda units: json.loads(str(units))[0]))
    by_width = sizes.groupby("first")["trial"].first()
    counted = curves.groupby("trial")["parameters"].first()
    widths = sorted(by_width.index)
    assert all(counted[by_width[a]] < counted[by_width[b]] for a, b in zip(widths, widths[1:]))
    assert {"at_best_latency_ms", "pareto_rank", "feasible", "crowding"} <= set(trials.columns)
    front = trials[trials["pareto_rank"] == 1]
    assert len(front) >= 1 and front["feasible"].all()
    # nobody on the front is beaten on both objectives by anyone feasible
    for _, member in front.iterrows():
        others = trials[trials["feasible"] & (trials["trial"] != member["trial"])]
        assert not ((others["best_val_loss"] <= member["best_val_loss"])
                    & (others["at_best_latency_ms"] <= member["at_best_latency_ms"])
                    & ((others["best_val_loss"] < member["best_val_loss"])
                       | (others["at_best_latency_ms"] < member["at_best_latency_ms"]))).any()


def test_optuna_got_both_objectives_and_the_constraint(pareto_sweep):
    searcher_state = sorted(pareto_sweep.glob("searcher-state-*.pkl"))
    assert searcher_state, "Tune saved the searcher"
    state = cloudpickle.loads(searcher_state[-1].read_bytes())   # OptunaSearch's saved attributes
    assert state["_metric"] == ["val_loss", "latency_ms"] and state["_mode"] == ["min", "min"]
    assert type(state["_sampler"]).__name__ == "TPESampler"
    study = state["_ot_study"]
    assert len(study.directions) == 2
    done = [t for t in study.trials if t.values is not None]
    assert done and all(len(t.values) == 2 for t in done)
    assert all(len(t.user_attrs["constraints"]) == 1 for t in done)


def test_rank_prints_the_front_and_export_picks_under_a_latency_budget(pareto_sweep, tmp_path, capsys):
    assert cli.main(["rank", str(pareto_sweep)]) == 0
    out = capsys.readouterr().out
    assert "Pareto front of val_loss (min), latency_ms (min)" in out and "pareto_rank" in out
    trials = store.load(pareto_sweep).trials
    fastest = trials.sort_values("at_best_latency_ms").iloc[0]
    budget = float(fastest["at_best_latency_ms"]) * 1.0001
    to = tmp_path / "fast"
    assert cli.main(["export", str(pareto_sweep), "--to", str(to), "--pick",
                     f"min val_loss where latency_ms <= {budget}"]) == 0
    card = json.loads((to / "model_card.json").read_text())
    meeting = trials[trials["feasible"] & (trials["at_best_latency_ms"] <= budget)]
    assert card["champion"]["trial"] == meeting.sort_values("best_val_loss").iloc[0]["trial"]
    assert card["choice"]["pick_constraints"] == [f"latency_ms <= {budget:g}"]
