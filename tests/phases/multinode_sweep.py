"""A raysweep sweep on a local multi-node Ray (ray.cluster_utils.Cluster), optionally losing a node.

Run by test_multinode.py in a process of its own, so that the test session's shared Ray is left
alone; the test gives it a private RAY_TMPDIR, so no other process attaches to this cluster.

    python multinode_sweep.py SPEC.json OUT.json [--kill-a-worker]

The head carries raysweep's driver resource and one CPU, two worker nodes one CPU each. With
--kill-a-worker, the first worker node is removed without grace as soon as a trial on it has
reported its first epoch. OUT.json gets the experiment directory and the node ids.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path

import ray
from ray.cluster_utils import Cluster

from raysweep import spec
from raysweep.phases import sweep
from raysweep.runner.resources import DRIVER_RESOURCE


def reports(storage: Path):
    """Every report written so far by the trials under `storage` (Tune's result.json lines)."""
    for path in storage.glob("*/*/result.json"):
        for line in path.read_text().splitlines():
            try:
                yield json.loads(line)
            except json.JSONDecodeError:   # a line still being written
                continue


def kill_when_training(cluster: Cluster, victim, storage: Path, killed: dict, stop: threading.Event) -> None:
    while not stop.is_set():
        for report in reports(storage):
            if report.get("node_id") == victim.node_id and report.get("epoch", 0) >= 1:
                cluster.remove_node(victim, allow_graceful=False)
                killed.update(trial=report["trial_id"], epoch=report["epoch"], at=time.time())
                return
        time.sleep(0.1)


def main(spec_file: str, out_file: str, kill: bool) -> None:
    raw = json.loads(Path(spec_file).read_text())
    # No dashboard: these trials train in-trial (no Train run to clean up), and port 8265 may be taken.
    cluster = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 1, "resources": {DRIVER_RESOURCE: 100}, "include_dashboard": False})
    workers = [cluster.add_node(num_cpus=1) for _ in range(2)]
    cluster.wait_for_nodes()
    nodes = {"head": cluster.head_node.node_id, "workers": [w.node_id for w in workers]}
    killed: dict = {}
    stop = threading.Event()
    if kill:
        storage = Path(raw["storage_path"])
        threading.Thread(target=kill_when_training, args=(cluster, workers[0], storage, killed, stop),
                         daemon=True).start()
    try:
        experiment_dir = sweep.run(spec.validate(raw), address=cluster.address)
    finally:
        stop.set()
        ray.shutdown()
        cluster.shutdown()
    Path(out_file).write_text(json.dumps({"experiment_dir": str(experiment_dir), **nodes, "killed": killed}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], kill="--kill-a-worker" in sys.argv[3:])
