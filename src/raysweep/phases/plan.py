"""`raysweep plan`: what a sweep will cost, before it runs.

The trials come from the searcher (a grid's cells, or num_samples), the epochs from the
scheduler's own rule played out (search/budget.py), the trials at once from the resources per
trial and the machine or cluster (phases/capacity.py), and the time of an epoch, in this order:

1. `--probe`: a short run of the baseline (each tuned value at its middle, as lr-find and
   io-search take it; each branch's, for model families): two waves of trials of `PROBE_EPOCHS`
   epochs, as many at once as the sweep runs here (they share the machine as its trials will),
   no early stopping, in the spec's storage as `<name>-probe-<time>`, so that later plans and the
   sweep's own plan find it;
2. the newest finished experiment of the same spec (analysis/timing.py says which count);
3. the newest io-search of the same workload and data.

Without any of them, the plan gives trials and epochs and says how to get a time.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from pathlib import Path

from raysweep.analysis import forecast, timing
from raysweep.datasets import location
from raysweep.errors import UserError
from raysweep.phases import capacity, sweep
from raysweep.runner.resources import SizingError
from raysweep.search import space
from raysweep.spec import Spec, validate

PROBE_EPOCHS = 3
PROBE_MAX_AT_ONCE = 4   # trials at once in a probe: as the sweep runs them (CPUs shared), up to this


def plan(spec: Spec, *, cluster: str | Path | None = None, probe: bool = False,
         prices: dict[str, float] | None = None, address: str | None = None) -> forecast.Prediction:
    """The plan for `spec` on `cluster` (a `ray up` config) or this machine; `prices` (USD per
    hour by node type) add to and override the spec's `cost:`."""
    trials = sweep.planned_trials(spec)
    where = capacity.cluster(spec, cluster, trials) if cluster else _here(spec, trials)
    measured = timing_of(spec)
    if probe:
        at_once = where.slots if not cluster or address else _here(spec, trials, probing=True).slots
        measured = run_probe(spec, at_once=at_once, address=address)
    notes = []
    if cluster and measured and not address:
        notes.append("epochs timed on this machine: the cluster's nodes may be faster or slower (a sweep there "
                     "makes the next plan exact)")
    if location.is_uri(location.absolute(spec.storage_path)) and not probe:
        notes.append(f"storage_path {spec.storage_path} is a bucket: earlier sweeps and probes there are not searched "
                     "for a timing; --probe measures one")
    where = dataclasses.replace(where, notes=(*where.notes, *notes))
    return forecast.predict(spec, trials, where, measured, {**spec.cost, **(prices or {})})


def _here(spec: Spec, trials: int, probing: bool = False) -> forecast.Capacity:
    """This machine, where a trial must fit: one clear line where it does not."""
    try:
        return capacity.this_machine(spec, trials)
    except SizingError as exc:
        where = "the probe runs on this machine, and " if probing else ""
        raise UserError(f"{where}{exc.lines[0]}; plan for a cluster with --cluster CLUSTER_YAML"
                        + (", and probe it with --address" if probing else "")) from None


def timing_of(spec: Spec) -> timing.Measured | None:
    """The newest measurement of this spec's epochs that is already there (no probe)."""
    return timing.reference(spec) or timing.from_io_search(spec)


def run_probe(spec: Spec, *, at_once: int = 1, address: str | None = None) -> timing.Measured:
    """Run the baseline for a few epochs as a small sweep, and measure it."""
    probe = probe_spec(spec, at_once)
    experiment_dir = sweep.run(probe, address=address, quiet=True)
    what = (f"probe: {probe.search.num_samples} trials of the baseline, {probe.resources.max_concurrent_trials} "
            f"at a time, {probe.epochs} epochs each")
    timing.relabel(experiment_dir, signature=timing.signature(spec), what=what)
    measured = timing.measure(experiment_dir, what=what)
    if measured is None:
        raise UserError(f"the probe in {experiment_dir} ran no epoch; its error is in {experiment_dir}/raysweep.log "
                        f"(the sweep would fail the same way: `raysweep validate {spec.source}`)")
    return measured


def probe_spec(spec: Spec, at_once: int = 1) -> Spec:
    """The spec as a few trials of its baseline, `at_once` at a time (as many as the sweep runs
    here, so they share the CPUs as its trials will, up to `PROBE_MAX_AT_ONCE`), a few epochs
    each, no early stopping, no tracking; the same data, resources and storage. A first wave
    starts the trial processes (its warm-up is the slots' start); the next is timed. Where a
    choice has branches (model families), the timed trials take each branch's baseline in turn,
    as many as it takes to time every branch once."""
    at_once = max(1, min(at_once, PROBE_MAX_AT_ONCE))
    timed = [{k: v for k, v in p.items() if k != "epochs"} for p in baseline_points(spec.params, at_once)]
    points = [timed[0]] * at_once + timed   # a first wave that starts the trial processes, then the timed ones
    raw = copy.deepcopy(spec.raw)
    raw["name"] = f"{spec.name}-probe"
    raw["fixed"] = {**(raw.get("fixed") or {}), "epochs": min(PROBE_EPOCHS, spec.epochs)}
    raw["params"] = {k: v for k, v in _without_grids(raw.get("params") or {}).items() if k != "epochs"}
    raw["search"] = {"algorithm": "random", "num_samples": len(points), "seed": spec.search.seed or 0,
                     "points_to_evaluate": points}
    raw["scheduler"] = {"type": "fifo"}
    raw["resources"] = {**(raw.get("resources") or {}), "max_concurrent_trials": at_once}
    for key in ("tracking", "lr_find", "io_search", "constraints"):
        raw.pop(key, None)
    return validate(raw, source=f"{spec.source} (probe)")


def baseline_points(params, count: int) -> list[dict]:
    """`count` baseline configs as a spec gives points: each value of the first choice with
    branches in turn (at least once each), its branch's and every other value at its middle."""
    params = tuple(params)
    branching = next((p for p in params if p.is_choice and p.when), None)
    if branching is None:
        return [space.decode(space.baseline(params), params)] * count
    points = []
    for i in range(max(count, len(branching.values))):
        value = branching.values[i % len(branching.values)]
        first = dataclasses.replace(branching, values=(value, *[v for v in branching.values if v != value]))
        turned = tuple(first if p is branching else p for p in params)
        points.append(space.decode(space.baseline(turned), turned))
    return points


def _without_grids(params: dict) -> dict:
    """`type: grid` as `type: choice` (the probe samples given points; a grid would multiply them)."""
    out = {}
    for name, p in params.items():
        p = dict(p) if isinstance(p, dict) else p
        if isinstance(p, dict) and p.get("type") == "grid":
            p["type"] = "choice"
        if isinstance(p, dict) and isinstance(p.get("when"), dict):
            p["when"] = {value: _without_grids(subs or {}) for value, subs in p["when"].items()}
        out[name] = p
    return out


def parse_prices(given: list[str]) -> dict[str, float]:
    """`--price NODE_TYPE=USD_PER_HOUR`, repeatable."""
    prices = {}
    for item in given:
        name, _, value = item.partition("=")
        try:
            price = float(value)
        except ValueError:
            price = math.nan
        if name.strip() and math.isfinite(price) and price >= 0:
            prices[name.strip()] = price
        else:
            raise UserError(f"--price {item}: give NODE_TYPE=USD_PER_HOUR, e.g. --price cpu_worker=0.38 "
                            f"(node types: the cluster config's, or {capacity.LOCAL_NODE} for this machine)")
    return prices
