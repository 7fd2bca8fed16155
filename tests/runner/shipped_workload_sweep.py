"""Sweeps of a user's workload on a local multi-node Ray whose worker node never saw the user's files.

Run by test_shipped_workload.py in a process of its own (the session's shared Ray is left alone):

    python shipped_workload_sweep.py SPEC.json OUT.json MODULE_ROOT

The head has raysweep's driver resource and no CPU, so every trial runs on the worker node. The
spec's workload is a file (its folder must travel with it); then, on the same cluster, the
same sweep names a module of a package under MODULE_ROOT, which only this driver has on its
path. OUT.json gets both experiment directories and the node ids.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import ray
from ray.cluster_utils import Cluster

from raysweep import spec
from raysweep.phases import sweep
from raysweep.runner.resources import DRIVER_RESOURCE


def main(spec_file: str, out_file: str, module_root: str) -> None:
    raw = json.loads(Path(spec_file).read_text())
    cluster = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 0, "resources": {DRIVER_RESOURCE: 100}, "include_dashboard": False})
    worker = cluster.add_node(num_cpus=2)
    cluster.wait_for_nodes()
    out = {"head": cluster.head_node.node_id, "worker": worker.node_id}
    try:
        out["file_experiment"] = str(sweep.run(spec.validate(raw), address=cluster.address))
        ray.shutdown()   # the next sweep connects anew, with its own runtime environment
        sys.path.insert(0, module_root)   # the driver's path only: the nodes were started before
        by_module = {**raw, "name": raw["name"] + "_module", "workload": "user_pkg.models"}
        out["module_experiment"] = str(sweep.run(spec.validate(by_module), address=cluster.address))
    finally:
        ray.shutdown()
        cluster.shutdown()
    Path(out_file).write_text(json.dumps(out))


if __name__ == "__main__":
    main(*sys.argv[1:4])
