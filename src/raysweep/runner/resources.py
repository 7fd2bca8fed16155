"""Size trial, worker and Ray Data resources together so that a sweep cannot deadlock.

The trap: on 2 CPUs a Tune trial holding 1 CPU whose Train worker holds the
other leaves Ray Data no CPU to read with, and the trial waits forever. The rules:

- `in_trial`: the trial process trains, so it holds the worker's CPUs and GPUs.
- `torch_trainer`: the trial only drives the Train controller, so it holds no CPU but one unit
  of a custom resource that the local Ray we start provides (as Ray Tune's docs do for
  Train drivers); the workers hold CPUs and GPUs. On a cluster without that resource the driver takes
  a whole CPU instead.
- Streaming (not materialised) data keeps one CPU free for Ray Data's read tasks.
- At most as many trials run at once as fit in what is left.
- Under a scheduler that pauses trials (hyperband, bohb) the searcher must not cap the trials
  it proposes (it would count the paused ones), so each trial also takes an equal share of the
  driver slots: no more than `max_concurrent` fit at once, whatever the executor.

On an autoscaling cluster (one `ray up` started: the head holds `~/ray_bootstrap_config.yaml`,
as Ray Tune also checks) "the cluster" is what its node types can grow to, so trials that do
not fit yet wait while the autoscaler adds nodes, and the nodes go again when the sweep ends.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path

import ray
import yaml

from raysweep.errors import UserError
from raysweep.search import SCHEDULERS
from raysweep.spec import Resources, Spec

DRIVER_RESOURCE = "raysweep_trial_driver"
LOCAL_DRIVER_SLOTS = 1000


class SizingError(UserError):
    """Not even one trial fits on the cluster; the message says what to lower."""


@dataclass(frozen=True)
class Allocation:
    trial: dict[str, float]   # for tune.with_resources
    max_concurrent: int
    data_cpus: int
    cpus_per_trial: float


def allocate(res: Resources, executor: str, *, cluster_cpus: float, cluster_gpus: float,
             has_driver_slots: bool, streaming: bool) -> Allocation:
    """Trial resources and the number of concurrent trials that fit (beside Ray Data's reads).

    `streaming`: Ray Data's read tasks stream the shards while trials train (a TorchTrainer's
    workers on data too large to keep); they get a CPU of their own.
    """
    data_cpus = 1 if streaming else 0
    worker_cpus = res.workers_per_trial * res.cpus_per_worker
    worker_gpus = res.workers_per_trial * res.gpus_per_worker
    if executor == "in_trial":
        trial = {"cpu": res.cpus_per_worker}
        if res.gpus_per_worker:
            trial["gpu"] = res.gpus_per_worker
        cpus_per_trial = worker_cpus
    elif has_driver_slots:
        trial = {"cpu": 0, DRIVER_RESOURCE: 1}
        cpus_per_trial = worker_cpus
    else:
        trial = {"cpu": 1}
        cpus_per_trial = worker_cpus + 1
    fit = math.floor((cluster_cpus - data_cpus) / cpus_per_trial + 1e-9)
    if worker_gpus:
        fit = min(fit, math.floor(cluster_gpus / worker_gpus + 1e-9))
    if fit < 1:
        need = f"{cpus_per_trial:g} CPUs" + (f" + {data_cpus} for Ray Data" if data_cpus else "")
        if worker_gpus:
            need += f" and {worker_gpus:g} GPUs"
        raise SizingError(
            f"one trial needs {need}, but the cluster has {cluster_cpus:g} CPUs and "
            f"{cluster_gpus:g} GPUs. Lower resources.cpus_per_worker, resources.workers_per_trial "
            f"or resources.gpus_per_worker" + (", or set data.materialize: true" if data_cpus else "") + ".")
    wanted = res.max_concurrent_trials or fit
    return Allocation(trial=trial, max_concurrent=min(wanted, fit), data_cpus=data_cpus,
                      cpus_per_trial=cpus_per_trial)


BOOTSTRAP_CONFIG = "~/ray_bootstrap_config.yaml"


def autoscaling_ceiling(config_path: str | Path = BOOTSTRAP_CONFIG) -> dict[str, float] | None:
    """What an autoscaling cluster can grow to: each node type's `resources` times its
    `max_workers` (the head once); None where this is no head of an autoscaling cluster.

    An upper bound: the cluster-wide `max_workers` may allow fewer nodes at once, and then
    some trials wait longer, none fails.
    """
    path = Path(config_path).expanduser()
    if not path.is_file():
        return None
    config = yaml.safe_load(path.read_text()) or {}
    total: dict[str, float] = {}
    for name, node_type in (config.get("available_node_types") or {}).items():
        count = 1 if name == config.get("head_node_type") else int(node_type.get("max_workers", 0))
        for resource, amount in (node_type.get("resources") or {}).items():
            total[resource] = total.get(resource, 0) + count * float(amount)
    return total


def for_cluster(spec: Spec, executor: str | None = None, *, joined: bool = False,
                streaming: bool = False) -> Allocation:
    """`allocate` for the spec on the Ray cluster this process is connected to.

    `joined`: this process joined a running cluster (session.joined_a_cluster); on the head of
    an autoscaling one, what its node types can grow to counts, not only what is up now. A
    local Ray this process started has no autoscaler, whatever files lie in the home directory.
    `streaming`: Ray Data's read tasks stream the shards each epoch (tuning.open_datasets).
    """
    cluster = dict(ray.cluster_resources())
    for resource, amount in ((autoscaling_ceiling() if joined else None) or {}).items():
        cluster[resource] = max(cluster.get(resource, 0), amount)
    allocation = allocate(
        spec.resources, executor or spec.executor, cluster_cpus=cluster.get("CPU", 0),
        cluster_gpus=cluster.get("GPU", 0), has_driver_slots=cluster.get(DRIVER_RESOURCE, 0) >= 1,
        streaming=streaming)
    if SCHEDULERS[spec.scheduler.type].pauses and cluster.get(DRIVER_RESOURCE, 0) >= 1:
        allocation = bounded_by_slots(allocation, cluster[DRIVER_RESOURCE])
    return allocation


def bounded_by_slots(allocation: Allocation, slots: float) -> Allocation:
    """Each trial takes a whole share of the cluster's driver slots such that `max_concurrent`
    fit and one more does not (Ray wants whole amounts above 1)."""
    share = max(1, math.floor(slots / allocation.max_concurrent))
    return replace(allocation, trial={**allocation.trial, DRIVER_RESOURCE: share})
