"""How many trials of a spec run at once, and on which nodes, before any Ray is started: on
this machine, or on a cluster a `ray up` config describes. `raysweep plan` and the plan a sweep
writes at its start use it; the sizing rules are resources.allocate's, so the plan counts the
slots the sweep will get.

On a cluster config, each node type hosts as many trials as its `resources` fit
(`allocate` on that one node: a trial runs on one node), and the autoscaler is assumed to start
the nodes the trials need: the head, each type's `min_workers`, then more workers, type by type
up to its `max_workers` and the cluster's `max_workers`, until every slot the sweep can fill has
a place. Trials without GPUs go to node types without GPUs first (Ray's autoscaler keeps GPU
nodes for GPU work).
"""

from __future__ import annotations

import math
import os
from dataclasses import replace
from pathlib import Path

import yaml

from raysweep.analysis.forecast import Capacity
from raysweep.errors import UserError
from raysweep.runner.resources import DRIVER_RESOURCE, SizingError, allocate
from raysweep.spec import Spec

LOCAL_NODE = "local"   # this machine's node type, for --price local=USD_PER_HOUR


def streams(spec: Spec) -> bool:
    """Ray Data streams the shards beside the trials (a TorchTrainer's workers on data not kept);
    `auto` is taken as kept, the common case for data that fits."""
    return spec.executor == "torch_trainer" and spec.data.materialize is False


def this_machine(spec: Spec, trials: int, cpus: float | None = None, gpus: float = 0) -> Capacity:
    """Trials at once on a local Ray raysweep starts here (every CPU, the driver slots)."""
    cpus = float(cpus or os.cpu_count() or 1)
    allocation = allocate(spec.resources, spec.executor, cluster_cpus=cpus, cluster_gpus=gpus,
                          has_driver_slots=True, streaming=streams(spec))
    slots = max(1, min(allocation.max_concurrent, trials))
    return Capacity(slots=slots, cpus_per_trial=allocation.cpus_per_trial, gpus_per_trial=_gpus(spec),
                    nodes={LOCAL_NODE: 1}, where=f"this machine ({cpus:g} CPUs, {gpus:g} GPUs)",
                    notes=(f"{slots} trials at once: {_why_slots(spec, allocation.max_concurrent, trials)}",))


def cluster(spec: Spec, config_path: str | Path, trials: int) -> Capacity:
    """Trials at once on the cluster `config_path` (a `ray up` config) describes."""
    config = _read(config_path)
    node_types = config["available_node_types"]
    head = config.get("head_node_type")
    driver_slots = any((t.get("resources") or {}).get(DRIVER_RESOURCE) for t in node_types.values())
    fits = {name: _fit(spec, t.get("resources") or {}, driver_slots) for name, t in node_types.items()}
    wanted = min(trials, spec.resources.max_concurrent_trials or trials)
    budget = int(config.get("max_workers", math.inf) if config.get("max_workers") is not None else 10**9)
    nodes = {head: 1} if head in node_types else {}
    for name, t in node_types.items():
        if name != head and int(t.get("min_workers", 0)):
            nodes[name] = min(int(t["min_workers"]), budget)
            budget -= nodes[name]
    slots = sum(fits[name] * count for name, count in nodes.items())
    for name in _in_order(spec, node_types, head):
        t = node_types[name]
        while slots < wanted and fits[name] > 0 and budget > 0 and nodes.get(name, 0) < int(t.get("max_workers", 0)):
            nodes[name] = nodes.get(name, 0) + 1
            budget -= 1
            slots += fits[name]
    if slots < 1:
        raise SizingError(f"{config_path}: no node type fits one trial ({_needs(spec)}); give a node type "
                          "the resources, or lower resources.cpus_per_worker or resources.gpus_per_worker")
    slots = min(slots, wanted)
    placed = ", ".join(f"{fits[n]} per {n}" for n in nodes if fits[n])
    return Capacity(slots=slots, cpus_per_trial=_cpus(spec, driver_slots), gpus_per_trial=_gpus(spec),
                    nodes={n: c for n, c in nodes.items() if c}, where=f"{config_path}",
                    notes=(f"{slots} trials at once ({placed}), the autoscaler starting "
                           + ", ".join(f"{c} x {n}" for n, c in nodes.items() if c)
                           + f"; {_why_slots(spec, slots, trials)}",))


def _read(config_path: str | Path) -> dict:
    path = Path(config_path)
    try:
        config = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise UserError(f"--cluster {config_path}: cannot read it ({exc.strerror or exc})") from None
    except yaml.YAMLError as exc:
        raise UserError(f"--cluster {config_path}: not YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(config, dict) or not isinstance(config.get("available_node_types"), dict):
        raise UserError(f"--cluster {config_path}: no available_node_types; give the cluster config "
                        "`ray up` takes (cluster.yaml)")
    for name, t in config["available_node_types"].items():
        if not isinstance(t, dict) or not isinstance(t.get("resources", {}), dict):
            raise UserError(f"--cluster {config_path}: available_node_types.{name}: needs a mapping with "
                            "resources: {CPU: N, GPU: M}")
    return config


def _fit(spec: Spec, resources: dict, driver_slots: bool) -> int:
    """Trials one node of these resources hosts."""
    try:
        allocation = allocate(replace(spec.resources, max_concurrent_trials=None), spec.executor,
                              cluster_cpus=float(resources.get("CPU", 0)), cluster_gpus=float(resources.get("GPU", 0)),
                              has_driver_slots=driver_slots, streaming=streams(spec))
    except SizingError:
        return 0
    return allocation.max_concurrent


def _in_order(spec: Spec, node_types: dict, head: str) -> list[str]:
    """The worker types the autoscaler adds, GPU types last for trials without GPUs."""
    workers = [n for n in node_types if n != head]
    if _gpus(spec):
        return [n for n in workers if (node_types[n].get("resources") or {}).get("GPU")]
    return sorted(workers, key=lambda n: bool((node_types[n].get("resources") or {}).get("GPU")))


def _gpus(spec: Spec) -> float:
    return spec.resources.workers_per_trial * spec.resources.gpus_per_worker


def _cpus(spec: Spec, driver_slots: bool) -> float:
    workers = spec.resources.workers_per_trial * spec.resources.cpus_per_worker
    return workers + (1 if spec.executor == "torch_trainer" and not driver_slots else 0)


def _needs(spec: Spec) -> str:
    return f"{_cpus(spec, True):g} CPUs" + (f" and {_gpus(spec):g} GPUs" if _gpus(spec) else "")


def _why_slots(spec: Spec, fit: int, trials: int) -> str:
    reasons = [f"{_needs(spec)} per trial"]
    if spec.resources.max_concurrent_trials:
        reasons.append(f"resources.max_concurrent_trials {spec.resources.max_concurrent_trials}")
    if trials < fit:
        reasons.append(f"only {trials} trials")
    return ", ".join(reasons)
