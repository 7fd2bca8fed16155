"""Connect to Ray, or start a local one sized for raysweep's trials.

Environment settings for every process of the sweep live here, with their reasons.
"""

from __future__ import annotations

import json
import os

import ray

from raysweep.runner.resources import DRIVER_RESOURCE, LOCAL_DRIVER_SLOTS
from raysweep.workloads import references

# Train V2's controller polls its workers every 2 s by default, and report() and shutdown wait
# on that poll; 0.2 s cuts the per-trial overhead of the TorchTrainer path (bench/trial_overhead.py).
RAY_ENV = {"RAY_TRAIN_HEALTH_CHECK_INTERVAL_S": "0.2"}
# Per-epoch checkpoints force a state snapshot each time; on small trials Tune then warns about
# every snapshot. The snapshot is cheap here (a few ms), so the warning is noise.
DRIVER_ENV = {"TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S": "0",
              # Tune's newer console output prints a configuration box and paths even at
              # verbose=0; raysweep prints its own lines (progress.py) and tables instead.
              "RAY_AIR_NEW_OUTPUT": "0"}


def joined_a_cluster() -> bool:
    """Is this process the driver of a cluster it did not start (`--address`, `RAY_ADDRESS`, a
    `ray job submit` job)? Only such a cluster can have an autoscaler behind it."""
    return _joined


_joined = False


def start_ray(address: str | None = None, workload: str | None = None) -> None:
    """Connect to `address` (or RAY_ADDRESS), else start a local Ray with the driver resource.

    On a cluster, a user's `workload` (a file or a module of their own) travels to every node in
    the job's runtime environment (`references.shipment`); a local Ray's workers read it where
    it is.

    The dashboard is started (bound to localhost) because Train V2 frees the placement groups of
    trials that ASHA stops through the dashboard's State API; without it their CPUs stay taken
    and later trials wait forever.
    """
    global _joined
    if ray.is_initialized():
        return
    for key, value in {**RAY_ENV, **DRIVER_ENV}.items():
        os.environ.setdefault(key, value)
    address = address or os.environ.get("RAY_ADDRESS")
    _joined = bool(address)
    if address:
        ray.init(address=address, runtime_env=cluster_runtime_env(workload), log_to_driver=False)
    else:
        ray.init(num_cpus=os.cpu_count(), resources={DRIVER_RESOURCE: LOCAL_DRIVER_SLOTS},
                 include_dashboard=True, dashboard_host="127.0.0.1", log_to_driver=False)


def cluster_runtime_env(workload: str | None) -> dict:
    """raysweep's settings for every process of the job, and the user's workload code.

    A job submitted with `--py-modules` of its own keeps them: Ray refuses to merge two lists of
    py_modules, so the job's are added to ours and ours override.
    """
    shipment = references.shipment(workload) if workload else None
    if shipment is None:
        return {"env_vars": dict(RAY_ENV)}
    runtime_env = shipment.runtime_env()
    runtime_env["env_vars"].update(RAY_ENV)
    job = json.loads(os.environ.get("RAY_JOB_CONFIG_JSON_ENV_VAR") or "{}").get("runtime_env") or {}
    if job.get("py_modules"):
        runtime_env["py_modules"] = list(job["py_modules"]) + runtime_env["py_modules"]
        os.environ["RAY_OVERRIDE_JOB_RUNTIME_ENV"] = "1"
    return runtime_env
