"""How many trials of a spec run at once, and on which nodes, before any Ray is started: on
this machine, or on a cluster a `ray up` config describes. `raysweep plan` and the plan a sweep
writes at its start use it; the sizing rules are resources.allocate's, so the plan counts the
slots the sweep will get.

On a cluster config, each node type hosts as many trials as its `resources` fit
(`allocate` on that one node: a trial runs on one node), and the autoscaler is assumed to start
the nodes the trials need: the head, each type's `min_workers`, then more workers, type by type
up to its `max_workers` and the cluster's `max_workers`, until every slot the sweep can fill has
a place. Trials without GPUs go to node types without GPUs first (Ray's autoscaler keeps GPU
nodes for GPU work). A local-provider config (machines by IP, cluster.local.yaml) is its head and
workers, with the resources their `ray start` commands give.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import replace
from pathlib import Path

import torch
import yaml

from raysweep.analysis.forecast import Capacity
from raysweep.errors import UserError
from raysweep.runner.resources import DRIVER_RESOURCE, Allocation, SizingError, allocate
from raysweep.spec import Spec

LOCAL_NODE = "local"   # this machine's node type, for --price local=USD_PER_HOUR


def streams(spec: Spec) -> bool:
    """Ray Data streams the shards beside the trials (a TorchTrainer's workers on data not kept);
    `auto` is taken as kept, the common case for data that fits."""
    return spec.executor == "torch_trainer" and spec.data.materialize is False


def local_gpus() -> int:
    """The GPUs a local Ray would find here (torch's count: Ray's own detection needs Ray started)."""
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def this_machine(spec: Spec, trials: int, cpus: float | None = None, gpus: float | None = None) -> Capacity:
    """Trials at once on a local Ray raysweep starts here (every CPU and GPU, the driver slots)."""
    cpus = float(cpus or os.cpu_count() or 1)
    gpus = float(local_gpus() if gpus is None else gpus)
    allocation = allocate(spec.resources, spec.executor, cluster_cpus=cpus, cluster_gpus=gpus,
                          has_driver_slots=True, streaming=streams(spec))
    slots = max(1, min(allocation.max_concurrent, trials))
    return Capacity(slots=slots, cpus_per_trial=allocation.cpus_per_trial, gpus_per_trial=gpus_per_trial(spec),
                    nodes={LOCAL_NODE: 1}, where=f"this machine ({cpus:g} CPUs, {gpus:g} GPUs)",
                    notes=(f"{slots} trials at once: {_why_slots(spec, allocation.max_concurrent, trials)}",))


def cluster(spec: Spec, config_path: str | Path, trials: int) -> Capacity:
    """Trials at once on the cluster `config_path` (a `ray up` config) describes."""
    config = _read(config_path)
    node_types, head = config["available_node_types"], config.get("head_node_type")
    driver_slots = any(t["resources"].get(DRIVER_RESOURCE) for t in node_types.values())
    fits = {name: _fit(spec, t["resources"], driver_slots) for name, t in node_types.items()}
    wanted = min(trials, spec.resources.max_concurrent_trials or trials)
    budget = config["max_workers"]
    nodes = {head: 1} if head in node_types else {}
    for name, t in node_types.items():
        if name != head and t["min_workers"]:
            nodes[name] = min(t["min_workers"], budget)
            budget -= nodes[name]
    slots = sum(fits[name].max_concurrent * count for name, count in nodes.items() if fits[name])
    for name in _in_order(spec, node_types, head):
        while (slots < wanted and fits[name] and budget > 0
               and nodes.get(name, 0) < node_types[name]["max_workers"]):
            nodes[name] = nodes.get(name, 0) + 1
            budget -= 1
            slots += fits[name].max_concurrent
    if slots < 1:
        raise UserError(f"--cluster {config_path}: no node type fits one trial ({_needs(spec)}); give a node "
                        "type the resources, or lower resources.cpus_per_worker or resources.gpus_per_worker")
    slots = min(slots, wanted)
    used = [fits[n] for n in nodes if fits[n]]
    placed = ", ".join(f"{fits[n].max_concurrent} per {n}" for n in nodes if fits[n])
    return Capacity(slots=slots, cpus_per_trial=used[0].cpus_per_trial, gpus_per_trial=gpus_per_trial(spec),
                    nodes={n: c for n, c in nodes.items() if c}, where=f"{config_path}",
                    notes=(f"{slots} trials at once ({placed}), the autoscaler starting "
                           + ", ".join(f"{c} x {n}" for n, c in nodes.items() if c)
                           + f"; {_why_slots(spec, slots, trials)}",
                           "the nodes taken as up when the sweep starts: the minutes an autoscaler takes to start "
                           "one are not counted"))


def _read(config_path: str | Path) -> dict:
    """The config with Ray's defaults filled in (autoscaler/_private/util.py,
    fill_node_type_min_max_workers): a worker type's max_workers is the cluster's, whose own
    default is 2 (Ray's AWS defaults); min_workers 0. Every number checked: one line naming it."""
    where = f"--cluster {config_path}"
    try:
        config = yaml.safe_load(Path(config_path).read_text())
    except OSError as exc:
        raise UserError(f"{where}: cannot read it ({exc.strerror or exc})") from None
    except yaml.YAMLError as exc:
        raise UserError(f"{where}: not YAML ({str(exc).splitlines()[0]})") from None
    if isinstance(config, dict) and (config.get("provider") or {}).get("type") == "local" \
            and "available_node_types" not in config:
        config = _local_provider(where, config)
    if not isinstance(config, dict) or not isinstance(config.get("available_node_types"), dict):
        raise UserError(f"{where}: no available_node_types; give the cluster config `ray up` takes (cluster.yaml)")
    config = {**config, "max_workers": _count(where, "max_workers", config.get("max_workers", DEFAULT_MAX_WORKERS))}
    types = {}
    for name, t in config["available_node_types"].items():
        key = f"available_node_types.{name}"
        if not isinstance(t, dict) or not isinstance(t.get("resources", {}), dict):
            raise UserError(f"{where}: {key}: needs a mapping with resources: {{CPU: N, GPU: M}}")
        resources = {r: _number(where, f"{key}.resources.{r}", v) for r, v in (t.get("resources") or {}).items()}
        head = name == config.get("head_node_type")
        types[name] = {**t, "resources": resources,
                       "min_workers": _count(where, f"{key}.min_workers", t.get("min_workers", 0)),
                       "max_workers": _count(where, f"{key}.max_workers",
                                             t.get("max_workers", 0 if head else config["max_workers"]))}
    return {**config, "available_node_types": types}


DEFAULT_MAX_WORKERS = 2   # Ray's default for a config without max_workers
LOCAL_HEAD, LOCAL_WORKER = "head", "worker"   # the node types of a local-provider cluster (cluster.local.yaml)


def _local_provider(where: str, config: dict) -> dict:
    """A local-provider config (machines by IP, as cluster.local.yaml) as node types: the head
    and `worker_ips`, each with the resources its `ray start` command gives (--num-cpus,
    --num-gpus, --resources); Ray would detect them on the machine, which a plan cannot."""
    workers = list((config["provider"] or {}).get("worker_ips") or [])
    types = {LOCAL_HEAD: {"resources": _started_with(where, "head_start_ray_commands", config)}}
    if workers:
        types[LOCAL_WORKER] = {"resources": _started_with(where, "worker_start_ray_commands", config),
                               "min_workers": len(workers), "max_workers": len(workers)}
    return {**config, "head_node_type": LOCAL_HEAD, "max_workers": len(workers), "available_node_types": types}


def _started_with(where: str, key: str, config: dict) -> dict:
    command = " ".join(str(c) for c in config.get(key) or [])
    cpus = re.search(r"--num-cpus[= ]+([0-9.]+)", command)
    if cpus is None:
        raise UserError(f"{where}: {key}: no --num-cpus in `ray start`; a local-provider cluster's resources are what "
                        "its nodes are started with: give --num-cpus=N (and --num-gpus=N) there")
    resources = {"CPU": float(cpus.group(1))}
    gpus = re.search(r"--num-gpus[= ]+([0-9.]+)", command)
    if gpus:
        resources["GPU"] = float(gpus.group(1))
    custom = re.search(r"--resources[= ]+'(\{[^']*\})'", command)
    if custom:
        try:
            resources.update({k: float(v) for k, v in json.loads(custom.group(1)).items()})
        except (ValueError, TypeError, AttributeError):
            raise UserError(f"{where}: {key}: --resources is not a JSON mapping of numbers: {custom.group(1)}") from None
    return resources


def _number(where: str, key: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        raise UserError(f"{where}: {key}: must be a number >= 0, got {value!r}")
    return float(value)


def _count(where: str, key: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise UserError(f"{where}: {key}: must be a whole number >= 0, got {value!r}")
    return value


def _fit(spec: Spec, resources: dict, driver_slots: bool) -> Allocation | None:
    """How one node of these resources hosts trials (a trial runs on one node); None: not one fits."""
    try:
        return allocate(replace(spec.resources, max_concurrent_trials=None), spec.executor,
                        cluster_cpus=resources.get("CPU", 0), cluster_gpus=resources.get("GPU", 0),
                        has_driver_slots=driver_slots, streaming=streams(spec))
    except SizingError:
        return None


def _in_order(spec: Spec, node_types: dict, head: str) -> list[str]:
    """The worker types the autoscaler adds, GPU types last for trials without GPUs."""
    workers = [n for n in node_types if n != head]
    if gpus_per_trial(spec):
        return [n for n in workers if node_types[n]["resources"].get("GPU")]
    return sorted(workers, key=lambda n: bool(node_types[n]["resources"].get("GPU")))


def gpus_per_trial(spec: Spec) -> float:
    return spec.resources.workers_per_trial * spec.resources.gpus_per_worker


def _needs(spec: Spec) -> str:
    cpus = spec.resources.workers_per_trial * spec.resources.cpus_per_worker
    gpus = gpus_per_trial(spec)
    return f"{cpus:g} CPU{'' if cpus == 1 else 's'}" + (f" and {gpus:g} GPU{'' if gpus == 1 else 's'}" if gpus else "")


def _why_slots(spec: Spec, fit: int, trials: int) -> str:
    reasons = [f"{_needs(spec)} per trial"]
    if spec.resources.max_concurrent_trials:
        reasons.append(f"resources.max_concurrent_trials {spec.resources.max_concurrent_trials}")
    if trials < fit:
        reasons.append(f"only {trials} trials")
    return ", ".join(reasons)
