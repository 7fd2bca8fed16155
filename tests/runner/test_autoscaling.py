"""A sweep that needs more GPUs than are up: the autoscaler adds nodes, trials wait, nodes go after.

Ray's fake multi-node provider plays the cloud (RAY_FAKE_CLUSTER=1), inside cluster/isolate.sh:
its own PID, mount and network namespaces, so the `ray start`/`ray stop` of the test can see no
other Ray on the machine. That needs root and unshare, as the browser test needs Chromium.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from raysweep.analysis import store

from conftest import BASE_SPEC

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).parent
pytestmark = pytest.mark.slow


def can_isolate() -> bool:
    """Root that may make namespaces (not every container's root may), and iproute2's `ip`."""
    if os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("ip"):
        return False
    return subprocess.run(["unshare", "--mount", "--pid", "--net", "--fork", "true"], capture_output=True).returncode == 0


@pytest.mark.skipif(not can_isolate(), reason="needs root allowed to make namespaces (unshare) and `ip`")
def test_gpu_trials_wait_for_the_autoscaler_and_the_nodes_go_afterwards(tiny_data, tmp_path):
    raw = copy.deepcopy(BASE_SPEC)
    raw.update(data={"path": str(tiny_data)}, storage_path=str(tmp_path / "results"),
               resources={"gpus_per_worker": 1}, search={"algorithm": "random", "num_samples": 2, "seed": 0})
    (tmp_path / "spec.json").write_text(json.dumps(raw))
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    result = subprocess.run(
        [str(ROOT / "cluster" / "isolate.sh"), str(tmp_path / "ns"), "bash", str(HERE / "autoscaling_sweep.sh"),
         str(tmp_path), str(tmp_path / "spec.json"), str(tmp_path / "out.json")],
        env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = json.loads((tmp_path / "out.json").read_text())
    assert out["before"] == {"nodes": 1, "gpus": 0}, "no GPU was up when the sweep started"
    assert out["max_concurrent"] == 2, "sized for what the GPU node type can grow to, not for 0 GPUs"
    assert out["most_nodes"] >= 2, "the autoscaler added GPU nodes for the waiting trials"
    assert out["nodes_after"] == 1, "and took them away once they fell idle"
    trials = store.load(out["experiment_dir"]).trials
    assert len(trials) == 2 and (trials["status"] == "finished").all()
    assert (trials["gpus"] == 1).all() and (trials["cuda_visible_devices"] == "0").all()
