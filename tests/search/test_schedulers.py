"""Each scheduler stops trials early on a real small sweep, says so in the store, and the store
says what that saved. A grid under an early-stopping scheduler runs in its seeded shuffled order."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from raysweep import spec
from raysweep.analysis import store
from raysweep.phases import sweep
from raysweep.search import searchers, space

pytestmark = pytest.mark.slow
RATES = [1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2]   # a grid from too slow to too fast


def run(raw_spec, scheduler: dict, search: dict) -> store.Results:
    raw_spec["fixed"]["epochs"] = 4
    raw_spec["scheduler"] = scheduler
    raw_spec["search"] = {"seed": 0, **search}
    if search["algorithm"] == "grid":
        raw_spec["params"]["learning_rate"] = {"type": "grid", "values": RATES}
    else:
        raw_spec["params"]["learning_rate"] = {"type": "loguniform", "low": 1e-5, "high": 3e-2}
    return store.load(sweep.run(spec.validate(raw_spec)))


def epochs_reported(trial_path: str) -> list[int]:
    return [json.loads(line)["epoch"] for line in (Path(trial_path) / "result.json").read_text().splitlines()]


@pytest.mark.parametrize("scheduler, search, label", [
    ({"type": "hyperband", "reduction_factor": 2}, {"algorithm": "grid"}, "HyperBand"),
    ({"type": "median", "grace_period": 1}, {"algorithm": "random", "num_samples": 8}, "median rule"),
    ({"type": "bohb", "reduction_factor": 2}, {"algorithm": "bohb", "num_samples": 8}, "BOHB"),
])
def test_the_scheduler_stops_trials_early_and_the_store_counts_what_it_saved(ray_session, raw_spec, capsys,
                                                                              scheduler, search, label):
    trials = run(raw_spec, scheduler, search).trials
    assert len(trials) == 8
    stopped = trials[trials["status"] == f"stopped by {label}"]
    assert len(stopped) >= 1 and (stopped["epochs_run"] < 4).all(), trials[["status", "epochs_run"]]
    assert set(trials["status"]) <= {"finished", f"stopped by {label}"}
    used = store.compute_used(trials)
    assert used.full == 32 and used.trained == trials["epochs_run"].sum() < 32
    for path in trials["path"]:   # a trial paused at a rung goes on from its checkpoint: no epoch twice
        reported = epochs_reported(path)
        assert reported == list(range(1, len(reported) + 1)), (path, reported)
    assert "Warning" not in capsys.readouterr().err


def test_asha_runs_a_grid_in_its_seeded_shuffled_order(ray_session, raw_spec):
    results = run(raw_spec, {"type": "asha", "grace_period": 1, "reduction_factor": 2}, {"algorithm": "grid"})
    s = spec.validate(raw_spec)
    planned = searchers.grid_points(searchers.Request(
        params=s.params, fixed={}, metric="val_loss", mode="min", seed=0, points=[], max_concurrent=2,
        num_samples=1, shuffle_grid=True), grid_every=True)
    trials = results.trials.assign(index=results.trials["trial"].str.split("_").str[-1].astype(int))
    ran = trials.sort_values("index")["learning_rate"].tolist()
    assert ran == pytest.approx([p["learning_rate"] for p in planned]) and ran != sorted(ran)
    assert len(ran) == searchers.planned_trials("grid", s.params, 1) == len(space.all_params(s.params)) * 8
    assert (trials["status"] == "stopped by ASHA").any()
