"""One ended trial as the results store holds it: a row of the trials table and its learning curve.

Tune leaves per trial its config, status and failures (in its experiment state or on the live
`Trial`), its reports (`result.json`, one JSON object per line, or `progress.csv`) and, where it
failed, `error.txt`. `row` turns those into the store's columns; the store calls it once per
trial, as the trial ends (analysis.store_writer) or when it rebuilds from Tune's files.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from raysweep import experiment
from raysweep.errors import describe_failure, failure_kind
from raysweep.search import SCHEDULERS, space
from raysweep.search.schedulers import SchedulerKind
from raysweep.spec import Spec
from raysweep.spec.validate import reported_metrics

# What Tune adds to every result besides the trial's own metrics.
TUNE_COLUMNS = {"timestamp", "checkpoint_dir_name", "should_checkpoint", "done", "trial_id", "date",
                "time_this_iter_s", "time_total_s", "pid", "hostname", "node_ip", "time_since_restore",
                "iterations_since_restore", "training_iteration", "config", "experiment_tag"}
# What raysweep's executors add to every report besides metrics (where the trial trained).
PLACEMENT_COLUMNS = {"node_id", "cuda_visible_devices"}
ERROR_FILE = experiment.ERROR_FILE


@dataclass(frozen=True)
class Sweep:
    """What a trial's row needs to know of its experiment."""

    spec: Spec
    modes: dict[str, str]        # metric -> "min" | "max", as the workload declares them (+ latency_ms, parameters)
    scheduler: SchedulerKind
    undefined: dict[str, str] = field(default_factory=dict)   # metric -> why the data leaves it NaN


def sweep_of(experiment_dir: str | Path) -> Sweep:
    spec = experiment.load_spec(experiment_dir)
    return Sweep(spec, reported_metrics(spec.workload, spec.fixed), SCHEDULERS[spec.scheduler.type],
                 experiment.data_warnings(experiment_dir).get("undefined", {}))


def why_nan(sweep: Sweep, row: dict, reported: list[str]) -> str:
    """For each metric the trial reported but never as a number: why (the data's warning, where
    validation found one), as JSON text {metric: why}, so that `rank` and the store say it rather
    than show NaN; "" where every metric has a number."""
    reasons = {m: sweep.undefined.get(m, "NaN in every report") for m in reported
               if m in sweep.modes and math.isnan(row.get(f"best_{m}", math.nan))}
    return json.dumps(reasons) if reasons else ""


def stop_reason(status: str, epochs_run: int, planned: int, error: str, scheduler: str,
                patience_ran_out: bool, stalled: bool = False) -> str:
    """Why a trial ended, in words: from Tune's status, the epochs it ran, its error and the
    label of the scheduler that could have stopped it (empty where none could)."""
    if status == "ERROR":
        return "stalled" if stalled else failure_kind(error)
    if status != "TERMINATED":
        return "unfinished"
    if epochs_run < planned:
        if patience_ran_out:   # the loop restores the best weights only at its last epoch
            return "early stopped"
        return f"stopped by {scheduler}" if scheduler else "stopped early"
    return "finished"


def cell(value):
    """Parquet wants one type per column: lists and mappings are stored as their JSON text."""
    return json.dumps(value) if isinstance(value, (list, tuple, dict)) else value


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _number(value) -> float:
    return float(value) if isinstance(value, (int, float)) and not _missing(value) else math.nan


def placement(reports: list[dict]) -> dict:
    """Where a trial trained, from what its reports carry (runner.executors.placement): the
    node of its last report, every node it ran on in order (a retried trial may move), and
    the GPUs Ray gave it."""
    nodes = [str(r["node_id"]) for r in reports if not _missing(r.get("node_id")) and r["node_id"]]
    devices = [r["cuda_visible_devices"] for r in reports if not _missing(r.get("cuda_visible_devices"))]
    return {"node_id": nodes[-1] if nodes else None, "nodes": cell(list(dict.fromkeys(nodes))),
            "cuda_visible_devices": str(devices[-1]) if devices else None}


def _best(values: list, mode: str) -> tuple[float, int | None]:
    """The best number among `values` and its position (the first, on a tie); NaN, None without."""
    numbers = [(v, i) for i, v in enumerate(map(_number, values)) if not math.isnan(v)]
    if not numbers:
        return math.nan, None
    pick = min if mode == "min" else max
    value = pick(v for v, _ in numbers)
    return value, next(i for v, i in numbers if v == value)


def _numeric(values) -> bool:
    """Is this a column of numbers (as pandas would type it): none but numbers or missing, and
    at least one number (NaN, a diverged loss, counts)."""
    seen = False
    for v in values:
        if v is None:
            continue
        if not isinstance(v, (int, float)):
            return False
        seen = True
    return seen


def error_text(trial_dir: str | Path) -> str:
    path = Path(trial_dir) / ERROR_FILE
    return path.read_text(errors="replace") if path.is_file() else ""


Curve = dict[str, list]   # column -> a trial's values, one per report: light to keep by the thousand


def row(sweep: Sweep, trial, status: str, reports: list[dict], error: str, stalled: dict) -> tuple[dict, Curve | None]:
    """A trial's row and its curve (None before its first report).

    `trial` is Tune's `Trial`, live or loaded from its saved state (its id, config, failures,
    resources and path are read); `status` is how it ended as Tune saves it (TERMINATED,
    ERROR, or anything else for a trial that has not ended); `reports` are its reports
    (experiment.trial_reports) and `error` its error.txt; `stalled` is experiment.stalled_trials.
    """
    spec = sweep.spec
    where = placement(reports)   # before the re-run epochs replace the first attempt's
    reports = experiment.latest_per_epoch(reports)
    columns = list(dict.fromkeys(key for r in reports for key in r))
    metrics = [c for c in columns if c not in TUNE_COLUMNS | PLACEMENT_COLUMNS and c != "epoch"
               and not c.startswith("config/") and _numeric(r.get(c) for r in reports)]
    epochs = [int(r["epoch"]) for r in reports if not _missing(r.get("epoch"))]
    epochs_run = max(epochs, default=0)
    config = space.decode(trial.config, spec.params)
    planned = int(config.get("epochs", spec.epochs))
    if sweep.scheduler.stops_early:
        planned = min(planned, spec.scheduler_max_t)
    error = error if status == "ERROR" else ""
    patience = any(not _missing(r.get("restored_best_epoch")) for r in reports)
    # stalled in its last attempt (a retried trial may have failed otherwise since)
    was_stalled = status == "ERROR" and stalled.get(trial.trial_id, {}).get("attempt") == trial.num_failures
    out = {"trial": trial.trial_id, **{k: cell(v) for k, v in config.items()},
           "status": stop_reason(status, epochs_run, planned, error, sweep.scheduler.label, patience, stalled=was_stalled),
           "error": (stalled[trial.trial_id]["reason"] if was_stalled else describe_failure(error))
           if status == "ERROR" else "",
           "epochs_run": epochs_run, "planned_epochs": planned}
    best_at = _best([r.get(spec.metric) for r in reports], spec.mode)[1] if spec.metric in columns else None
    out["best_epoch"] = int(reports[best_at]["epoch"]) if best_at is not None else None
    for m in metrics:   # best and last of each metric; last only of what is no score (lr)
        values = [r.get(m) for r in reports]
        if m == "restored_best_epoch":
            restored = [v for v in values if not _missing(v)]
            out[m] = int(restored[-1]) if restored else None
            continue
        if m in sweep.modes:
            out[f"best_{m}"] = _best(values, sweep.modes[m])[0]
        out[f"last_{m}"] = _number(values[-1])
    out["why_nan"] = why_nan(sweep, out, metrics)
    out["wall_time_s"] = _number(reports[-1].get("time_total_s")) if "time_total_s" in columns else 0.0
    resources = trial.placement_group_factory.required_resources
    out["cpus"], out["gpus"] = float(resources.get("CPU", 0)), float(resources.get("GPU", 0))
    # Tune counts a trial's final failure too; retries are the failures it came back from.
    out.update(where, retries=int(trial.num_failures) - int(status == "ERROR"))
    out["path"] = str(trial.path)
    if not reports:
        return out, None
    steps = [int(r["training_iteration"]) for r in reports] if "training_iteration" in columns \
        else list(range(1, len(reports) + 1))
    curve = {"trial": [trial.trial_id] * len(reports), "step": steps}
    for name in (["epoch"] if "epoch" in columns else []) + metrics:
        curve[name] = [r.get(name) for r in reports]
    return out, curve
