"""`raysweep lr-find SPEC`: how many steps a model needs, and which learning rates to search.

Each range test is a Tune trial on a small fixed subset of the training split (read once, kept
in the object store), so several of them (one per value of the spec's `lr_find.over`
parameters, e.g. per architecture or batch size) run side by side. A trial:

1. *steps to fit*: trains at a fixed learning rate until the training loss falls below
   `fit_loss_fraction` of its first value, and reports the number of steps;
2. *LR range test*: trains a fresh model of the same seed while the learning rate rises
   exponentially every step, and reports (lr, loss, smoothed loss) for each step.

The driver reads the curves back, suggests a range per test (`lr_range.suggest`) and one
envelope over all tests, and writes `lr_find.parquet` (every curve), `lr_find.png` and
`lr_find.json` into `storage_path/<name>-lr_find-<timestamp>/`.
"""

from __future__ import annotations

import copy
import json
import logging
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd
import torch
from ray import tune

from raysweep import experiment
from raysweep.datasets import batching, ray_data, reading, shards
from raysweep.errors import describe_failure
from raysweep.phases import lr_range
from raysweep.runner import executors, logs, ray_fixes, resources, session, tuning
from raysweep.search import space
from raysweep.spec import Spec, SpecError, data_checks, write_copy
from raysweep.trainables import kind_of
from raysweep.training import loop
from raysweep.workloads import config_from_trial, load_workload

CURVES_FILE, PLOT_FILE, SUMMARY_FILE = "lr_find.parquet", "lr_find.png", "lr_find.json"

log = logging.getLogger("raysweep")


@dataclass(frozen=True)
class RangeTest:
    """One trial's outcome: what it varied, steps to fit, and the range its curve suggests."""

    over: dict
    steps_to_fit: int | None
    fit_learning_rate: float
    epochs_to_fit: float | None   # steps_to_fit in epochs of the full training split
    suggestion: lr_range.Suggestion | None
    error: str = ""


@dataclass(frozen=True)
class Outcome:
    experiment_dir: Path
    tests: list[RangeTest]
    low: float | None             # the envelope of every test's range
    high: float | None


# --- inside a trial -----------------------------------------------------------------------------

def _subset(subset: ray_data.StoredSplit) -> dict:
    """The subset as one in-memory batch of torch tensors."""
    blocks = [batching.arrow_to_torch(t) for t in subset.tables()]
    return {k: torch.cat([b[k] for b in blocks]) for k in blocks[0]}


def _cycle(data: dict, batch_size: int, seed: int) -> Iterator[dict]:
    """Endless passes over an in-memory subset, each in a new seeded order."""
    n_rows = len(next(iter(data.values())))
    generator = torch.Generator().manual_seed(seed)
    while True:
        order = torch.randperm(n_rows, generator=generator)
        for start in range(0, n_rows - batch_size + 1, batch_size):
            rows = order[start:start + batch_size]
            yield {k: v[rows] for k, v in data.items()}


def lr_find_trial(config: dict, *, plan, subset, settings) -> None:
    """Tune function trainable: steps to fit, then the range test, reported step by step."""
    cfg = plan.config(config)
    executors.use_cpus(plan.cpus_per_worker)
    device = torch.device("cpu")
    workload = load_workload(plan.workload)
    data = _subset(subset)
    n_rows = len(next(iter(data.values())))
    if n_rows < cfg.batch_size:
        raise ValueError(f"lr_find.subset_rows ({n_rows} rows) is smaller than one batch "
                         f"({cfg.batch_size}); raise lr_find.subset_rows or lower batch_size")

    def fresh_step():
        trainee = loop.build(workload, cfg, plan.meta, device=device)
        trainee.model.train()
        batches = _cycle(data, cfg.batch_size, cfg.seed)

        def step(lr: float) -> float:
            for group in trainee.optimizer.param_groups:
                group["lr"] = lr
            return float(loop.train_step(workload, cfg, trainee, next(batches), device=device))
        return step

    fit_lr = settings.fit_learning_rate or cfg.learning_rate
    steps, first, last = lr_range.steps_to_fit(fresh_step(), lr=fit_lr, loss_fraction=settings.fit_loss_fraction,
                                               max_steps=settings.fit_max_steps)
    tune.report({"phase": "fit", "step": 0, "steps_to_fit": steps or -1, "fit_learning_rate": fit_lr,
                 "fit_first_loss": first, "fit_last_loss": last})
    curve = lr_range.range_test(fresh_step(), start_lr=settings.start_lr, end_lr=settings.end_lr,
                                num_steps=settings.num_steps, smoothing=settings.smoothing,
                                stop_factor=settings.stop_factor)
    for i, (lr, loss, smoothed) in enumerate(zip(curve.lr, curve.loss, curve.smoothed)):
        tune.report({"phase": "range", "step": i + 1, "lr": lr, "loss": loss, "smoothed_loss": smoothed})


# --- the driver ---------------------------------------------------------------------------------

def run(spec: Spec, *, address: str | None = None) -> Outcome:
    """Run one range test per combination of `lr_find.over` and read the curves back."""
    kind = kind_of(load_workload(spec.workload))
    if "lr_find" not in kind.phases:
        raise SpecError([f"{spec.source}: workload: lr-find times and steps raysweep's own PyTorch loop; the workload "
                         f"trains with {kind.label}. Run the sweep: raysweep run"])
    too_few = data_checks.lr_find_problem(shards.read_meta(spec.data.path), spec.fixed, list(spec.params),
                                          tuple(spec.lr_find.over), spec.lr_find.subset_rows,
                                          load_workload(spec.workload).Config().batch_size)
    if too_few:   # checked by validate where the spec has an lr_find section; the defaults here
        raise SpecError([f"{spec.source}: lr_find.subset_rows: {too_few}"])
    experiment_dir = experiment.create(spec, "lr_find")
    with logs.to_experiment_log(experiment_dir):
        outcome = _range_tests(spec, experiment_dir, address)
    experiment.push(experiment_dir, [logs.LOG_FILE])
    return outcome


def _range_tests(spec: Spec, experiment_dir: Path, address: str | None) -> Outcome:
    session.start_ray(address, spec)
    settings = spec.lr_find
    meta = shards.read_meta(spec.data.path)
    subset = ray_data.store_first_rows(reading.split_shards(spec.data.path, "train", meta), meta.get("format", "parquet"),
                                       reading.columns_of(meta), settings.subset_rows)
    allocation = resources.for_cluster(spec, executor="in_trial", joined=session.joined_a_cluster())
    over = {p.name: p for p in spec.params if p.name in settings.over}
    param_space = {**tuning.fixed_values(spec), **space.baseline(spec.params, skip=over),
                   **{name: tune.grid_search([p.encode(v) for v in p.values]) for name, p in over.items()}}
    fn = tune.with_parameters(lr_find_trial, plan=tuning.trial_plan(spec, meta, experiment_dir),
                              subset=subset, settings=settings)
    log.info("lr-find %s: %d range test(s), %d at once; results in %s", spec.name,
             math.prod(len(p.values) for p in over.values()), allocation.max_concurrent, experiment_dir)
    storage, name = experiment.tune_location(experiment_dir)
    with ray_fixes.installed(ray_fixes.READING_RESULTS):   # the results are read from Tune's analysis
        results = tune.Tuner(
            tune.with_resources(fn, allocation.trial), param_space=param_space,
            tune_config=tune.TuneConfig(max_concurrent_trials=allocation.max_concurrent, reuse_actors=True),
            run_config=tune.RunConfig(name=name, storage_path=storage,
                                      failure_config=tune.FailureConfig(max_failures=0), verbose=0),
        ).fit()
    tests, curves = [], []
    for result in results:
        values = space.decode(result.config, spec.params)
        test_over = {name: values.get(name) for name in over}
        test, curve = _read(result, test_over, spec, rows=meta["rows"]["train"])
        tests.append(test)
        curves.append(curve)
    found = [t.suggestion for t in tests if t.suggestion]
    low = min((s.low for s in found), default=None)
    high = max((s.high for s in found), default=None)
    outcome = Outcome(experiment_dir, tests, low, high)
    _write(outcome, curves)
    experiment.push(experiment_dir, [CURVES_FILE, PLOT_FILE, SUMMARY_FILE])
    return outcome


def _read(result, over: dict, spec: Spec, *, rows: int) -> tuple[RangeTest, pd.DataFrame | None]:
    """A trial's reports -> its RangeTest and its range curve (None where the trial failed)."""
    history = result.metrics_dataframe
    if result.error or history is None or "phase" not in history:
        error = describe_failure(str(result.error)) if result.error else "the trial reported nothing"
        return RangeTest(over, None, math.nan, None, None, error), None
    fit = history[history["phase"] == "fit"].iloc[0]
    steps = int(fit["steps_to_fit"]) if fit["steps_to_fit"] > 0 else None
    batch_size = config_from_trial(load_workload(spec.workload), result.config, spec.params).batch_size
    epochs = round(steps * batch_size / rows, 2) if steps else None
    curve = history[history["phase"] == "range"][["step", "lr", "loss", "smoothed_loss"]].reset_index(drop=True)
    try:
        suggestion = lr_range.suggest(lr_range.Curve(curve["lr"].to_numpy(), curve["loss"].to_numpy(),
                                                     curve["smoothed_loss"].to_numpy(),
                                                     stopped_early=len(curve) < spec.lr_find.num_steps))
        error = ""
    except ValueError as exc:
        suggestion, error = None, str(exc)
    return RangeTest(over, steps, float(fit["fit_learning_rate"]), epochs, suggestion, error), curve


def _write(outcome: Outcome, curves: list[pd.DataFrame | None]) -> None:
    """Every curve in one Parquet table (a column per `over` parameter), the summary, the plot."""
    directory = outcome.experiment_dir
    tables = [c.assign(**{k: json.dumps(v) for k, v in t.over.items()})
              for t, c in zip(outcome.tests, curves) if c is not None]
    (pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()).to_parquet(directory / CURVES_FILE)
    summary = {"low": outcome.low, "high": outcome.high,
               "tests": [{**asdict(t), "suggestion": asdict(t.suggestion) if t.suggestion else None}
                         for t in outcome.tests]}
    (directory / SUMMARY_FILE).write_text(json.dumps(summary, indent=2, default=str) + "\n")
    plot(outcome, curves, directory / PLOT_FILE)


def plot(outcome: Outcome, curves: list[pd.DataFrame | None], path: Path) -> None:
    """Smoothed loss against learning rate (log axis), one line per test, the range shaded."""
    # The object API (no backend chosen or changed), imported here: every `raysweep` command
    # that imports this module would otherwise wait for matplotlib (bench/startup.py).
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4.5), dpi=110)
    ax = fig.subplots()
    starts = []
    for test, curve in zip(outcome.tests, curves):
        if curve is None or curve.empty:
            continue
        label = ", ".join(f"{k}={v}" for k, v in test.over.items()) or "range test"
        line, = ax.plot(curve["lr"], curve["smoothed_loss"], label=label)
        starts.append(float(curve["smoothed_loss"].iloc[0]))
        if test.suggestion:
            s = test.suggestion
            for lr, marker in ((s.steepest_lr, "v"), (s.min_loss_lr, "o")):
                y = np.interp(np.log(lr), np.log(curve["lr"]), curve["smoothed_loss"])
                ax.plot([lr], [y], marker, color=line.get_color())
    if outcome.low and outcome.high:
        ax.axvspan(outcome.low, outcome.high, color="tab:green", alpha=0.15,
                   label=f"suggested range {outcome.low:.2g} .. {outcome.high:.2g}")
    if starts:  # the blow-up at the end would otherwise squash the interesting part
        ax.set_ylim(top=1.5 * max(starts))
    ax.set_xscale("log")
    ax.set_xlabel("learning rate")
    ax.set_ylabel("smoothed training loss")
    ax.set_title("LR range test (v steepest descent, o minimum loss)")
    if ax.get_legend_handles_labels()[0]:   # no curve (every test failed): no legend to draw
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)


def narrowed(spec: Spec, low: float, high: float) -> dict:
    """The spec's raw mapping with `params.learning_rate` over [low, high]: what `write_spec`
    writes and `raysweep playbook` searches on.

    A range becomes a loguniform over it; a grid or choice of n rates (an LR sweep) becomes n
    rates log-spaced over it; a fixed learning rate moves into `params` as a loguniform. The role
    is kept.
    """
    raw = copy.deepcopy(spec.raw)
    raw.get("fixed", {}).pop("learning_rate", None)
    previous = (raw.get("params") or {}).get("learning_rate") or {}
    if previous.get("type") in ("grid", "choice"):
        rates = np.geomspace(low, high, max(2, len(previous["values"])))
        entry = {"type": previous["type"], "values": sorted({float(f"{r:.2g}") for r in rates})}
    else:
        entry = {"type": "loguniform", "low": low, "high": high}
    if "role" in previous:
        entry["role"] = previous["role"]
    raw.setdefault("params", {})["learning_rate"] = entry
    return raw


def write_spec(spec: Spec, low: float, high: float, out: str | Path) -> Path:
    """A copy of the spec whose `params.learning_rate` covers [low, high] (`narrowed`), read back
    through `spec.load`, so what is written always validates."""
    return write_copy(narrowed(spec, low, high), out, [
        f"{spec.source} with the learning-rate range suggested by `raysweep lr-find`",
        f"({low:.2g} .. {high:.2g})."])


def format_outcome(outcome: Outcome) -> str:
    rows = []
    for t in outcome.tests:
        s = t.suggestion
        rows.append({**{k: json.dumps(v) if isinstance(v, list) else v for k, v in t.over.items()},
                     "steps_to_fit": t.steps_to_fit if t.steps_to_fit else "not reached",
                     "epochs_to_fit": t.epochs_to_fit, "steepest_lr": s.steepest_lr if s else None,
                     "min_loss_lr": s.min_loss_lr if s else None,
                     "range": f"{s.low:.2g} .. {s.high:.2g}" if s else t.error})
    table = pd.DataFrame(rows).to_string(index=False, float_format=lambda x: f"{x:.3g}")
    fitted = [t for t in outcome.tests if t.epochs_to_fit]
    if fitted:
        slowest = max(fitted, key=lambda t: t.epochs_to_fit)
        table += (f"\n\nsteps to fit: up to {slowest.steps_to_fit} steps at learning rate "
                  f"{slowest.fit_learning_rate:.2g}, {slowest.epochs_to_fit:g} epochs of the full training split; "
                  "keep fixed.epochs and scheduler.max_t well above that.")
    if outcome.low is None:
        return table + "\n\nno range could be read from the curves (see the messages above)."
    return table + f"\n\nsuggested learning_rate range: {outcome.low:.2g} .. {outcome.high:.2g} (loguniform)"
