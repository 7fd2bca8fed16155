"""Connect to Ray, or start a local one sized for raysweep's trials.

Environment settings for every process of the sweep live here, with their reasons.
"""

from __future__ import annotations

import json
import logging
import os

import ray

from raysweep.runner import ray_fixes
from raysweep.runner.resources import DRIVER_RESOURCE, LOCAL_DRIVER_SLOTS
from raysweep.spec import Spec
from raysweep.workloads import references

log = logging.getLogger("raysweep")

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


def start_ray(address: str | None = None, spec: Spec | None = None, *, dashboard: bool = False) -> None:
    """Connect to `address` (or RAY_ADDRESS), else start a local Ray with the driver resource;
    either says so first (a local Ray takes seconds to start).

    On a cluster, the `spec`'s workload, where it is the user's own (a file or a module), travels
    to every node in the job's runtime environment (`cluster_runtime_env`); a local Ray's
    workers read it where it is.

    A local Ray starts its dashboard (bound to localhost) only for the TorchTrainer executor (and
    where no spec says which): Train V2 frees the placement groups of trials that ASHA stops
    through the dashboard's State API, without which their CPUs stay taken and later trials wait
    forever. In-trial sweeps need none of it and start a second or two sooner (bench/startup.py),
    unless `dashboard` asks for it (`raysweep run --dashboard`), which also prints its URL.
    """
    global _joined
    ray_fixes.check_ray()   # a Ray the fixes do not fit is refused before it starts
    if ray.is_initialized():
        return
    for key, value in {**RAY_ENV, **DRIVER_ENV}.items():
        os.environ.setdefault(key, value)
    address = address or os.environ.get("RAY_ADDRESS")
    _joined = bool(address)
    if address:
        log.info("joining the Ray cluster at %s ...", address)
        runtime_env, override_job = cluster_runtime_env(spec, _submitted_job_env())
        if override_job:
            os.environ["RAY_OVERRIDE_JOB_RUNTIME_ENV"] = "1"
        context = ray.init(address=address, runtime_env=runtime_env, log_to_driver=False)
    else:
        log.info("starting a local Ray (%d CPUs)%s ...", os.cpu_count(), " and its dashboard" if dashboard else "")
        needs_dashboard = spec is None or spec.executor == "torch_trainer"
        context = ray.init(num_cpus=os.cpu_count(), resources={DRIVER_RESOURCE: LOCAL_DRIVER_SLOTS},
                           include_dashboard=dashboard or needs_dashboard, dashboard_host="127.0.0.1",
                           log_to_driver=False)
    if dashboard:
        show_dashboard(context.dashboard_url, address)


def show_dashboard(url: str | None, address: str | None) -> None:
    """Print the dashboard's address (`dashboard: http://127.0.0.1:8265`): printed, not logged,
    so that `--quiet` keeps what was asked for; or say why there is none."""
    if url:
        print(f"dashboard: {url if '://' in url else 'http://' + url}", flush=True)
    elif address:
        log.warning("the Ray cluster at %s runs no dashboard; its head starts one with `ray start --head "
                    "--include-dashboard=true`", address)
    else:
        log.warning("Ray's dashboard did not start; why is in dashboard.log among Ray's session logs "
                    "(/tmp/ray/session_latest/logs)")


def _submitted_job_env() -> dict:
    """The runtime environment `ray job submit` gave this driver's job (empty outside a job)."""
    return json.loads(os.environ.get("RAY_JOB_CONFIG_JSON_ENV_VAR") or "{}").get("runtime_env") or {}


def cluster_runtime_env(spec: Spec | None, job_env: dict) -> tuple[dict, bool]:
    """raysweep's settings for every process of the job and the user's workload code, and
    whether Ray must let them override the submitted job's (RAY_OVERRIDE_JOB_RUNTIME_ENV).

    Ray merges a submitted job's runtime environment (`--working-dir . --py-modules ...`) with
    the driver's key by key and refuses where both set one; so keys both set are merged here
    first (py_modules and excludes joined, environment variables with ours winning), and ours
    then override. The spec's dataset and results are left behind where they lie in the
    workload's folder.
    """
    shipment = references.shipment(spec.workload) if spec else None
    ours = shipment.runtime_env(keep_out=(spec.data.path, spec.storage_path)) if shipment else {}
    ours["env_vars"] = {**ours.get("env_vars", {}), **RAY_ENV}
    shared = set(job_env) & set(ours)
    for key in shared:
        if key == "env_vars":
            ours[key] = {**job_env[key], **ours[key]}
        else:   # py_modules, excludes
            ours[key] = list(dict.fromkeys([*job_env[key], *ours[key]]))
    return ours, bool(shared)
