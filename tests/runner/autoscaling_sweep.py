"""The driver of autoscaling_sweep.sh: run the sweep on the fake cluster, count its nodes.

    python autoscaling_sweep.py SPEC.json OUT.json ADDRESS
"""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path

import ray

from raysweep import spec
from raysweep.phases import sweep
from raysweep.runner import resources
from raysweep.runner.session import start_ray


def alive_nodes() -> int:
    return sum(1 for node in ray.nodes() if node["Alive"])


def count_nodes(most: list[int], stop: threading.Event) -> None:
    while not stop.wait(0.5):
        most.append(alive_nodes())


def main(spec_file: str, out_file: str, address: str) -> None:
    s = spec.validate(json.loads(Path(spec_file).read_text()))
    start_ray(address)
    before = {"nodes": alive_nodes(), "gpus": ray.cluster_resources().get("GPU", 0)}
    allocation = resources.for_cluster(s, joined=True)
    seen: list[int] = []
    stop = threading.Event()
    threading.Thread(target=count_nodes, args=(seen, stop), daemon=True).start()
    experiment_dir = sweep.run(s, address=address)
    stop.set()
    deadline = time.monotonic() + 120   # idle nodes go after 12 s; allow for a slow machine
    while alive_nodes() > 1 and time.monotonic() < deadline:
        time.sleep(1)
    Path(out_file).write_text(json.dumps({
        "experiment_dir": str(experiment_dir), "before": before, "most_nodes": max(seen, default=0),
        "nodes_after": alive_nodes(), "max_concurrent": allocation.max_concurrent}))
    ray.shutdown()


if __name__ == "__main__":
    main(*sys.argv[1:4])
