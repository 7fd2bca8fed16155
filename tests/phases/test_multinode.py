"""Sweeps on a local multi-node Ray: trials spread over the nodes, and survive losing one.

Each test runs `multinode_sweep.py` in its own process with its own cluster (a head and two
worker nodes of one CPU each), so the session's shared Ray is not touched.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from ray.tune import ExperimentAnalysis

from raysweep.analysis import store

from conftest import BASE_SPEC

pytestmark = pytest.mark.slow
SCRIPT = Path(__file__).with_name("multinode_sweep.py")


def sweep_on_three_nodes(tiny_data, tmp_path, *, kill: bool, **changes) -> tuple[dict, store.Results]:
    raw = copy.deepcopy(BASE_SPEC)
    raw.update(data={"path": str(tiny_data)}, storage_path=str(tmp_path / "results"), **changes)
    raw["resources"] = {"max_concurrent_trials": 3}
    (tmp_path / "spec.json").write_text(json.dumps(raw))
    # This cluster's session files, seen by no other process (a short path: Ray's sockets live there).
    with tempfile.TemporaryDirectory(prefix="rs-", dir="/tmp") as ray_tmp:
        env = {**os.environ, "RAY_TMPDIR": ray_tmp}
        args = [sys.executable, str(SCRIPT), str(tmp_path / "spec.json"), str(tmp_path / "out.json")]
        result = subprocess.run(args + (["--kill-a-worker"] if kill else []), env=env, capture_output=True,
                                text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = json.loads((tmp_path / "out.json").read_text())
    return out, store.load(out["experiment_dir"])


def test_trials_spread_over_the_nodes(tiny_data, tmp_path):
    out, results = sweep_on_three_nodes(
        tiny_data, tmp_path, kill=False, search={"algorithm": "random", "num_samples": 3, "seed": 0})
    trials = results.trials
    assert (trials["status"] == "finished").all() and trials["best_val_loss"].notna().all()
    nodes = set(trials["node_id"])
    assert len(nodes) >= 2, "three one-CPU nodes, three trials at once"
    assert nodes <= {out["head"], *out["workers"]}
    # The dataset was read and materialised once; trials on every node trained on it.
    assert nodes & set(out["workers"])
    assert (trials["retries"] == 0).all()


def test_losing_a_node_retries_its_trial_from_the_last_checkpoint(tiny_data, tmp_path):
    fixed = {**BASE_SPEC["fixed"], "epochs": 6}
    out, results = sweep_on_three_nodes(
        tiny_data, tmp_path, kill=True, fixed=fixed, failure={"max_retries": 2},
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
