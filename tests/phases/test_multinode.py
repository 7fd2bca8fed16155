"""Sweeps on a local multi-node Ray: trials spread over the nodes, and survive losing one.

Each test runs `multinode_sweep.py` in its own process with its own cluster (a head and two
worker nodes of one CPU each), so the session's shared Ray is not touched.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from ray.tune import ExperimentAnalysis

from raysweep.analysis import store

from conftest import BASE_SPEC, run_cluster_script

pytestmark = pytest.mark.slow
SCRIPT = Path(__file__).with_name("multinode_sweep.py")


def sweep_on_three_nodes(raw_spec, tmp_path, *, kill: bool, **changes) -> tuple[dict, store.Results]:
    raw = {**copy.deepcopy(raw_spec), **changes, "resources": {"max_concurrent_trials": 3}}
    out = run_cluster_script(SCRIPT, raw, tmp_path, *(["--kill-a-worker"] if kill else []))
    return out, store.load(out["experiment_dir"])


def test_trials_spread_over_the_nodes(raw_spec, tmp_path):
    out, results = sweep_on_three_nodes(
        raw_spec, tmp_path, kill=False, search={"algorithm": "random", "num_samples": 3, "seed": 0})
    trials = results.trials
    assert (trials["status"] == "finished").all() and trials["best_val_loss"].notna().all()
    nodes = set(trials["node_id"])
    assert len(nodes) >= 2, "three one-CPU nodes, three trials at once"
    assert nodes <= {out["head"], *out["workers"]}
    # The dataset was read and materialised once; trials on every node trained on it.
    assert nodes & set(out["workers"])
    assert (trials["retries"] == 0).all()


def test_losing_a_node_retries_its_trial_from_the_last_checkpoint(raw_spec, tmp_path):
    fixed = {**BASE_SPEC["fixed"], "epochs": 6}
    out, results = sweep_on_three_nodes(
        raw_spec, tmp_path, kill=True, fixed=fixed, failure={"max_retries": 2},
        search={"algorithm": "random", "num_samples": 3, "seed": 0})
    killed = out["killed"]
    assert killed, "a trial ran on the first worker node and that node was removed"
    trials = results.trials.set_index("trial")
    assert (trials["status"] == "finished").all(), trials[["status", "error"]]
    victim = trials.loc[killed["trial"]]
    assert victim["retries"] >= 1
    assert json.loads(victim["nodes"])[0] == out["workers"][0] and victim["node_id"] != out["workers"][0]
    # It went on from its checkpoint, not from scratch: epoch 1 was reported once.
    history = ExperimentAnalysis(out["experiment_dir"]).trial_dataframes[killed["trial"]]
    assert history["epoch"].tolist().count(1) == 1 and len(set(history["node_id"])) == 2
    # Nothing reported before the loss is gone, and no epoch is missing after the retry.
    curve = results.curves[results.curves["trial"] == killed["trial"]]
    assert sorted(curve["epoch"]) == list(range(1, 7))
    assert (results.trials["epochs_run"] == 6).all()
