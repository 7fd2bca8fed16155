"""A sweep's cost before it runs: trials, expected epochs, wall time, resource-hours and money,
and the assumptions behind each number. `raysweep plan` prints it; every sweep writes the one
it made at its start to `PLAN_FILE`, so that `rank` and the report set it beside what happened
(analysis/plan_check.py).

Wall time = the sweep's own overhead (Ray's start, the data's preparation, the results gathered
at the end) + the makespan of the trials as `search.budget` plays them, `slots` at a time.
Resource-hours are the trials' durations times what each holds; money is the nodes the trials
need, up for the whole wall time, at their price per hour.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

from raysweep import experiment
from raysweep.checks import duration_text
from raysweep.search import SCHEDULERS, budget
from raysweep.spec import Spec

PLAN_FILE = "plan.json"
DEFAULT_OVERHEAD_S = 10.0   # Ray's start and the datasets' preparation on a small sweep (BENCHMARKS: start-up)


@dataclass(frozen=True)
class Capacity:
    """Where the trials run: how many at once, what each holds, and the nodes that host them."""

    slots: int
    cpus_per_trial: float
    gpus_per_trial: float
    nodes: dict[str, int]              # node type -> how many the trials need (head included)
    where: str                         # "this machine (2 CPUs)", "cluster.yaml: ..."
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Prediction:
    trials: int
    slots: int
    epochs: float
    epochs_low: float
    epochs_high: float
    worst_case_epochs: int
    wall_s: float | None
    cpu_hours: float | None
    gpu_hours: float | None
    cost_usd: float | None
    nodes: dict[str, int]
    timing_source: str
    assumptions: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


def predict(spec: Spec, trials: int, capacity: Capacity, measured=None, prices: dict[str, float] | None = None,
            seed: int = 0, events: int = budget.SIMULATED_EVENTS) -> Prediction:
    """The plan for `trials` trials of `spec` on `capacity`, timed by `measured`
    (analysis.timing.Measured) where given; `prices`: USD per hour by node type; `events`:
    the epochs simulated over all plays (fewer: a quicker, rougher forecast)."""
    kind = SCHEDULERS[spec.scheduler.type]
    timing = measured.timing if measured else None
    epochs, tuned = trial_epochs(spec)
    played = budget.forecast(kind.rule, spec.scheduler.options, trials=trials, epochs=epochs,
                             slots=capacity.slots, timing=timing, seed=seed, events=events)
    notes = [*capacity.notes, *([tuned] if tuned else []), _epochs_note(spec, played)]
    wall = cpu_hours = gpu_hours = cost = None
    if measured:
        overhead = measured.overhead_s
        if math.isnan(overhead):
            overhead = DEFAULT_OVERHEAD_S
            notes.append(f"the sweep's own start and end: {DEFAULT_OVERHEAD_S:g} s (not measured), and no gap between "
                         "trials")
        wall = overhead + played.makespan_s
        cpu_hours = played.trial_seconds * capacity.cpus_per_trial / 3600
        gpu_hours = played.trial_seconds * capacity.gpus_per_trial / 3600
        t = measured.timing
        first = f", a trial's first {t.first_epoch_extra_s:.2g} s more" if t.first_epoch_extra_s >= 0.005 else ""
        notes.append(f"an epoch takes {t.epoch_s:.3g} s{first}; each trial costs {t.trial_gap_s:.2g} s besides its "
                     f"epochs, the first in each slot {t.slot_start_s:.2g} s more (a trial process starting); the "
                     f"sweep's own start and end {overhead:.2g} s; {measured.source}")
        notes.append("every trial's epochs take as long as the measured ones (the tuned values do not change it)")
        if t.reports_once:
            notes.append(f"{t.reports_once:.0%} of the trials report only at their last epoch, as in the measurement "
                         "(a model fitted once): the scheduler cannot stop those early")
        if kind.pauses:
            notes.append(f"{kind.label} pauses trials at each rung until their bracket gets there: waits not counted")
        cost, priced = _cost(capacity.nodes, prices or {}, wall)
        notes.extend(priced)
    else:
        notes.append("no timing: run `raysweep plan SPEC --probe` (a short run of the baseline), an io-search, or "
                     "a sweep of the same spec first; trials and epochs above need none")
    return Prediction(trials=trials, slots=capacity.slots, epochs=played.epochs, epochs_low=played.epochs_low,
                      epochs_high=played.epochs_high, worst_case_epochs=played.worst_case_epochs, wall_s=wall,
                      cpu_hours=cpu_hours, gpu_hours=gpu_hours, cost_usd=cost, nodes=dict(capacity.nodes),
                      timing_source=measured.source if measured else "", assumptions=notes)


def trial_epochs(spec: Spec) -> tuple[int, str]:
    """The epochs each trial runs; where `epochs` is tuned, the mean of its values (and a note)."""
    tuned = next((p for p in spec.params if p.name == "epochs"), None)
    if tuned is None:
        return spec.epochs, ""
    values = list(tuned.values) if tuned.is_choice else [tuned.low, tuned.high]
    mean = max(1, round(sum(values) / len(values)))
    return mean, (f"epochs is tuned ({', '.join(f'{v:g}' for v in values)}): each trial taken to run {mean}, "
                  "the mean")


def _epochs_note(spec: Spec, played: budget.Forecast) -> str:
    kind = SCHEDULERS[spec.scheduler.type]
    at_most = f"{played.trials} trials of at most {played.max_epochs_per_trial} epochs"
    if not kind.stops_early:
        return f"{at_most}: every trial runs them all (scheduler {spec.scheduler.type})"
    return (f"{at_most}: {kind.label}'s own rule played {played.plays} times with {played.trials} trials "
            f"{'' if played.plays == 1 else 'of random quality '}as they would start, the expected epochs "
            f"(10th to 90th percentile {played.epochs_low:.0f} to {played.epochs_high:.0f})")


def _cost(nodes: dict[str, int], prices: dict[str, float], wall_s: float) -> tuple[float | None, list[str]]:
    """Money for the nodes, each up for the whole wall time; None without a price for each."""
    if not prices:
        return None, []
    unused = [name for name in prices if name not in nodes]
    notes = [f"price for {name}: the plan needs no {name} node (it needs {', '.join(nodes)})" for name in unused]
    missing = [name for name in nodes if name not in prices]
    if missing:
        return None, [*notes, f"no price for node type {', '.join(missing)}: no cost (give --price "
                              "NODE_TYPE=USD_PER_HOUR)"]
    hours = wall_s / 3600
    cost = sum(count * prices[name] * hours for name, count in nodes.items())
    used = ", ".join(f"{count} x {name} at ${prices[name]:g}/h" for name, count in nodes.items())
    return cost, [*notes, f"money: {used}, each up for the whole wall time"]


def write(experiment_dir: Path, prediction: Prediction) -> None:
    (Path(experiment_dir) / PLAN_FILE).write_text(json.dumps(prediction.as_dict(), indent=2))
    experiment.push(Path(experiment_dir), [PLAN_FILE])


def read(experiment_dir: str | Path) -> dict | None:
    path = Path(experiment_dir) / PLAN_FILE
    return json.loads(path.read_text()) if path.is_file() else None


def format_prediction(prediction: Prediction) -> str:
    """The plan as `raysweep plan` prints it."""
    p = prediction
    lines = [f"trials               {p.trials}, {p.slots} at a time",
             f"epochs               {p.epochs:.0f} expected ({p.epochs_low:.0f} to {p.epochs_high:.0f}); "
             f"{p.worst_case_epochs} if none stopped early"]
    if p.wall_s is not None:
        lines += [f"wall time            {duration_text(p.wall_s)}",
                  f"resource-hours       {p.cpu_hours:.3g} CPU-hours, {p.gpu_hours:.3g} GPU-hours (accelerator-hours)"]
        if p.cost_usd is not None:
            lines.append(f"cost                 ${p.cost_usd:,.2f}" if p.cost_usd >= 1 else
                         f"cost                 ${p.cost_usd:.2g}")
    else:
        lines.append("wall time            unknown (no timing)")
    nodes = ", ".join(f"{count} x {name}" for name, count in p.nodes.items())
    lines.append(f"nodes                {nodes}")
    return "\n".join(lines + ["", "assumptions:"] + [f"  - {line}" for line in p.assumptions])
