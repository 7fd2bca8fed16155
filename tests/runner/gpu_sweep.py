"""Sweeps on a Ray with one logical GPU: trials pack by their GPU fraction, and see that GPU.

Run by test_gpu_scheduling.py in a process of its own (the session's shared Ray has no GPU);
the test gives it a private RAY_TMPDIR.

    python gpu_sweep.py SPEC.json OUT.json N_GPUS

Ray is started with 10 logical CPUs and N_GPUS logical GPUs, so the GPUs, not the CPUs, bound
how many trials run at once. A thread samples the free GPUs while the sweep runs: if the driver or
Ray Data held any, fewer trials could run than the fractions allow.
"""

from __future__ import annotations

import json
import sys
import threading
from pathlib import Path

import ray

from raysweep import spec
from raysweep.phases import sweep
from raysweep.runner import resources
from raysweep.runner.resources import DRIVER_RESOURCE


def sample_free_gpu(free: list[float], stop: threading.Event) -> None:
    while not stop.wait(0.05):
        free.append(ray.available_resources().get("GPU", 0.0))


def main(spec_file: str, out_file: str, n_gpus: int) -> None:
    s = spec.validate(json.loads(Path(spec_file).read_text()))
    ray.init(num_cpus=10, num_gpus=n_gpus, resources={DRIVER_RESOURCE: 100}, include_dashboard=True,
             dashboard_host="127.0.0.1", dashboard_port=None, log_to_driver=False)
    allocation = resources.for_cluster(s)   # the local Ray started here: no autoscaler
    free: list[float] = []
    stop = threading.Event()
    threading.Thread(target=sample_free_gpu, args=(free, stop), daemon=True).start()
    try:
        experiment_dir = sweep.run(s)
    finally:
        stop.set()
        ray.shutdown()
    Path(out_file).write_text(json.dumps({"experiment_dir": str(experiment_dir), "min_free_gpu": min(free),
                                          "max_concurrent": allocation.max_concurrent, "trial": allocation.trial}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
