"""`raysweep plan`: what a sweep will cost, before it runs.

The trials come from the searcher (a grid's cells, or num_samples), the epochs from the
scheduler's own rule played out (search/budget.py), the trials at once from the resources per
trial and the machine or cluster (phases/capacity.py), and the time of an epoch, in this order:

1. `--probe`: a short run of the baseline (each tuned value at its middle, as lr-find and
   io-search take it): two waves of trials of `PROBE_EPOCHS` epochs, as many at once as the
   sweep runs here (they share the machine as its trials will), no early stopping, in the spec's
   storage as `<name>-probe-<time>`, so that later plans and the sweep's own plan find it;
2. the newest finished experiment of the same spec (analysis/timing.py says which count);
3. the newest io-search of the same workload and data.

Without any of them, the plan gives trials and epochs and says how to get a time.
"""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

from raysweep.analysis import forecast, timing
from raysweep.errors import UserError
from raysweep.phases import capacity, sweep
from raysweep.search import space
from raysweep.spec import Spec, validate

PROBE_EPOCHS = 3
PROBE_WAVES = 2         # the first wave starts the trial processes, the second shows a trial's own cost
PROBE_MAX_AT_ONCE = 4   # trials at once in a probe: as the sweep runs them (CPUs shared), up to this


def plan(spec: Spec, *, cluster: str | Path | None = None, probe: bool = False,
         prices: dict[str, float] | None = None, address: str | None = None) -> forecast.Prediction:
    """The plan for `spec` on `cluster` (a `ray up` config) or this machine; `prices` (USD per
    hour by node type) add to and override the spec's `cost:`."""
    trials = sweep.planned_trials(spec)
    here = capacity.this_machine(spec, trials)
    where = capacity.cluster(spec, cluster, trials) if cluster else here
    measured = run_probe(spec, at_once=here.slots, address=address) if probe else timing_of(spec)
    if cluster and measured:
        where = dataclasses.replace(where, notes=(*where.notes, "epochs timed on this machine: the cluster's nodes may "
                                                  "be faster or slower (a sweep there makes the next plan exact)"))
    return forecast.predict(spec, trials, where, measured, {**spec.cost, **(prices or {})})


def timing_of(spec: Spec) -> timing.Measured | None:
    """The newest measurement of this spec's epochs that is already there (no probe)."""
    return timing.reference(spec) or timing.from_io_search(spec)


def run_probe(spec: Spec, *, at_once: int = 1, address: str | None = None) -> timing.Measured:
    """Run the baseline for a few epochs as a small sweep, and measure it."""
    probe = probe_spec(spec, at_once)
    experiment_dir = sweep.run(probe, address=address, quiet=True)
    at_once = probe.resources.max_concurrent_trials
    what = (f"probe: {PROBE_WAVES * at_once} trials of the baseline, {at_once} at a time, "
            f"{probe.epochs} epochs each")
    timing.relabel(experiment_dir, signature=timing.signature(spec), what=what)
    measured = timing.measure(experiment_dir, what=what)
    if measured is None:
        raise UserError(f"the probe in {experiment_dir} ran no epoch; its error is in {experiment_dir}/raysweep.log "
                        f"(the sweep would fail the same way: `raysweep validate {spec.source}`)")
    return measured


def probe_spec(spec: Spec, at_once: int = 1) -> Spec:
    """The spec as two waves of `at_once` trials of its baseline (as many at once as the sweep
    runs here, so they share the CPUs as its trials will, up to `PROBE_MAX_AT_ONCE`): the tuned
    values fixed at their middle, a few epochs, no early stopping, no tracking; the same data,
    resources and storage."""
    at_once = max(1, min(at_once, PROBE_MAX_AT_ONCE))
    raw = copy.deepcopy(spec.raw)
    baseline = space.decode(space.baseline(spec.params), spec.params)
    raw["name"] = f"{spec.name}-probe"
    raw["fixed"] = {**(raw.get("fixed") or {}), **baseline, "epochs": min(PROBE_EPOCHS, spec.epochs)}
    raw.pop("params", None)
    raw["search"] = {"algorithm": "random", "num_samples": PROBE_WAVES * at_once, "seed": spec.search.seed or 0}
    raw["resources"] = {**(raw.get("resources") or {}), "max_concurrent_trials": at_once}
    raw["scheduler"] = {"type": "fifo"}
    for key in ("tracking", "lr_find", "io_search", "constraints"):
        raw.pop(key, None)
    return validate(raw, source=f"{spec.source} (probe)")


def parse_prices(given: list[str]) -> dict[str, float]:
    """`--price NODE_TYPE=USD_PER_HOUR`, repeatable."""
    prices = {}
    for item in given:
        name, _, value = item.partition("=")
        try:
            prices[name.strip()] = float(value)
        except ValueError:
            name = ""
        if not name.strip() or prices.get(name.strip(), -1) < 0:
            raise UserError(f"--price {item}: give NODE_TYPE=USD_PER_HOUR, e.g. --price cpu_worker=0.38 "
                            f"(node types: the cluster config's, or {capacity.LOCAL_NODE} for this machine)")
    return prices
