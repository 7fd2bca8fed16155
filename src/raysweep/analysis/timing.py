"""How long a spec's trials take, learned from sweeps that ran: what `raysweep plan` and the plan
a sweep writes at its start (analysis/forecast.py) time their epochs by.

Every sweep records its timeline (`TIMELINE_FILE`): when the command started, when Tune began
and ended the trials, when it was done, how many trials ran at once, and the spec's timing
`signature`. From a finished experiment with a timeline, `measure` takes:

- the time of an epoch (the mean of every epoch after each trial's first, from Tune's
  `time_this_iter_s`), and the first epoch's extra (reading the data, the first batches);
- the gap in a slot between trials (a trial process starting, its checkpoint written): the gap
  that, replayed with the trials' own durations in the order Tune made them, fills the span Tune
  took (`fit_gap`);
- the sweep's own overhead around its trials (Ray's start, the datasets' preparation, the
  results gathered at the end).

Two specs share a signature when everything that sets the time of an epoch is the same: the
workload, the data and how it is read, the fixed values (the epochs aside), the tuned
parameters and the resources each trial holds. The search, the scheduler, the epochs and the
trials at once may differ: those are what the plan works out.
"""

from __future__ import annotations

import hashlib
import heapq
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.fs as pafs

from raysweep import experiment
from raysweep.analysis import store
from raysweep.datasets import location
from raysweep.experiment import journal
from raysweep.search import SCHEDULERS
from raysweep.search.budget import Timing
from raysweep.spec import Spec

TIMELINE_FILE = "timeline.json"
SIGNATURE_KEYS = ("workload", "data", "fixed", "params", "resources")
MAX_TRIALS_READ = 200   # trials whose reports `measure` reads: enough for the means, bounded at scale


@dataclass(frozen=True)
class Measured:
    """A spec's timing and where it was measured."""

    timing: Timing
    overhead_s: float          # the sweep's start and end, around its trials
    source: str                # for the plan's assumptions: "measured in DIR (probe: 1 trial of 3 epochs)"
    experiment: str | None = None


def signature(spec: Spec) -> str:
    """What sets the time of an epoch, hashed (see the module's docstring)."""
    raw = {key: spec.raw.get(key) for key in SIGNATURE_KEYS}
    raw["fixed"] = {k: v for k, v in (raw["fixed"] or {}).items() if k != "epochs"}
    raw["resources"] = {k: v for k, v in (raw["resources"] or {}).items() if k != "max_concurrent_trials"}
    return hashlib.sha256(json.dumps(raw, sort_keys=True, default=str).encode()).hexdigest()[:16]


def record(experiment_dir: Path, entry: dict) -> None:
    """Write one run's or resume's timeline entry to the experiment (and its home, for a URI):
    the entry that began at `entry["started"]` is replaced, so a run writes it as its trials
    start and again as it ends, and a run killed between the two leaves an entry without an end."""
    entries = timeline(experiment_dir)
    if entries and entries[-1].get("started") == entry["started"]:
        entries[-1] = entry
    else:
        entries.append(entry)
    _write(experiment_dir, entries)


def relabel(experiment_dir: Path, *, signature: str, what: str) -> None:
    """Mark a probe's timeline as a measurement of the spec it probed (`signature`)."""
    entries = timeline(experiment_dir)
    for entry in entries:
        entry.update(signature=signature, what=what)
    _write(experiment_dir, entries)


def _write(experiment_dir: Path, entries: list[dict]) -> None:
    (Path(experiment_dir) / TIMELINE_FILE).write_text(json.dumps(entries, indent=2))
    experiment.push(Path(experiment_dir), [TIMELINE_FILE])


def timeline(experiment_dir: str | Path) -> list[dict]:
    path = Path(experiment_dir) / TIMELINE_FILE
    return json.loads(path.read_text()) if path.is_file() else []


def measure(experiment_dir: str | Path, *, what: str = "") -> Measured | None:
    """The timing of a sweep run once to its end (no kill, no resume) under a scheduler that
    does not pause trials (a paused trial's time from start to end holds its waits): None where
    it cannot say.

    The first wave of trials (one per slot) starts the trial processes, and pays for imports
    and warm-up inside its first report, so the epochs and each trial's own cost are read from
    the later trials, and the first wave's excess over them is the slot's start."""
    runs = timeline(experiment_dir)
    if len(runs) != 1 or "ended" not in runs[0]:
        return None
    run, experiment_dir = runs[0], Path(experiment_dir)
    if SCHEDULERS[experiment.load_spec(experiment_dir).scheduler.type].pauses:
        return None
    trials = store.load(experiment_dir).trials
    trials = trials[trials["epochs_run"] > 0]
    if trials.empty:
        return None
    slots = int(run.get("slots") or 1)
    overhead = (run["trials_started"] - run["started"]) + (run["ended"] - run["trials_ended"])
    times = trial_times(experiment_dir, trials)
    order = list(times.index) if times is not None else sorted(trials["trial"])
    by_trial = trials.set_index("trial").loc[order]
    first, later = by_trial.iloc[:slots], by_trial.iloc[slots:]
    later = later if len(later) else by_trial
    epoch_s, extra, reports_once = _epochs(later.reset_index())
    if epoch_s is None:
        return None
    wall = by_trial["wall_time_s"].astype(float)
    if times is None:   # no journal: the trials' own durations, and one gap for everything else
        held, per_trial = wall, 0.0
        turnaround = fit_gap(held.tolist(), slots, run["trials_ended"] - run["trials_started"])
    else:
        held = (times["ended_at"] - times["started_at"]).loc[order]
        per_trial = float((held - wall).loc[later.index].clip(lower=0).median())
        # Tune's own start before the first trial and its end after the last are paid once
        overhead += (times["started_at"].min() - run["trials_started"]) + (run["trials_ended"] - times["ended_at"].max())
        turnaround = fit_gap(held.tolist(), slots, times["ended_at"].max() - times["started_at"].min())
    expected = per_trial + extra + first["epochs_run"].astype(float) * epoch_s
    slot_start = max(0.0, float((held.loc[first.index] - expected).mean())) if len(by_trial) > slots else 0.0
    per_epoch = trials["wall_time_s"] / trials["epochs_run"]
    spread = float(np.clip(per_epoch.std() / per_epoch.mean(), 0.02, 1.0)) if len(per_epoch) > 1 else 0.1
    label = what or f"{len(trials)} trials"
    return Measured(Timing(epoch_s=epoch_s, first_epoch_extra_s=extra, trial_gap_s=per_trial + turnaround,
                           slot_start_s=slot_start, spread=spread, reports_once=reports_once),
                    overhead_s=max(0.0, overhead), source=f"measured in {experiment.home(experiment_dir)} ({label})",
                    experiment=str(experiment_dir))


def _epochs(trials: pd.DataFrame) -> tuple[float | None, float, float]:
    """From Tune's `time_this_iter_s`: the mean epoch after each trial's first report, the first
    report's extra, and the share of trials that reported once, at their last epoch (a model
    family fitted once: no scheduler can stop it early). A report covers the epochs since the
    one before (a booster's rounds, a fit's whole run)."""
    first_s = first_epochs = later_s = later_epochs = once = 0.0
    for path in trials.sort_values("trial")["path"].head(MAX_TRIALS_READ):
        reports = [r for r in experiment.latest_per_epoch(experiment.trial_reports(path))
                   if isinstance(r.get("time_this_iter_s"), (int, float)) and math.isfinite(r["time_this_iter_s"])]
        if not reports:
            continue
        covered = np.diff([0] + [int(r.get("epoch", i + 1)) for i, r in enumerate(reports)]).clip(min=1)
        first_s, first_epochs = first_s + reports[0]["time_this_iter_s"], first_epochs + covered[0]
        later_s += sum(r["time_this_iter_s"] for r in reports[1:])
        later_epochs += covered[1:].sum()
        once += len(reports) == 1 and covered[0] > 1
    read = min(len(trials), MAX_TRIALS_READ)
    if not first_epochs:
        return None, 0.0, 0.0
    if not later_epochs:
        return first_s / first_epochs, 0.0, once / read
    epoch_s = later_s / later_epochs
    return epoch_s, max(0.0, (first_s - first_epochs * epoch_s) / read), once / read


def trial_times(experiment_dir: Path, trials: pd.DataFrame) -> pd.DataFrame | None:
    """Each trial's `started_at` (Tune starting it) and `ended_at`, by the trials journal (the
    driver's clock), in the order they started; None where the journal lacks any of them."""
    home = experiment.home(experiment_dir)
    filesystem, inner = (pafs.FileSystem.from_uri(home) if location.is_uri(home)
                         else (pafs.LocalFileSystem(), str(experiment_dir)))
    started = journal.read(filesystem, inner, journal.STARTED)
    ended = journal.read(filesystem, inner, journal.ENDED)
    ids = list(trials["trial"])
    if not all(t in started and t in ended and "started_at" in started[t] and "ended_at" in ended[t] for t in ids):
        return None
    times = pd.DataFrame({"started_at": [started[t]["started_at"] for t in ids],
                          "ended_at": [ended[t]["ended_at"] for t in ids]}, index=ids)
    return times.sort_values("started_at")


def replay_span(durations: list[float], slots: int, gap: float) -> float:
    """The span of trials of these durations, started in order as slots free up, each after `gap`."""
    free = [0.0] * max(1, slots)
    end = 0.0
    for duration in durations:
        start = heapq.heappop(free)
        finish = start + gap + duration
        end = max(end, finish)
        heapq.heappush(free, finish)
    return end


def fit_gap(durations: list[float], slots: int, span: float) -> float:
    """The gap between trials that makes their replay take `span` (bisection: the span grows with it)."""
    low, high = 0.0, max(span, 0.0)
    if replay_span(durations, slots, 0.0) >= span:
        return 0.0
    for _ in range(40):
        middle = (low + high) / 2
        low, high = (middle, high) if replay_span(durations, slots, middle) < span else (low, middle)
    return (low + high) / 2


def reference(spec: Spec) -> Measured | None:
    """The newest finished experiment in the spec's storage with the same signature, measured."""
    for experiment_dir in _experiments(spec, lambda name: True):
        runs = timeline(experiment_dir)
        if runs and runs[-1].get("signature") == signature(spec):
            found = measure(experiment_dir, what=runs[-1].get("what", ""))
            if found:
                return found
    return None


def from_io_search(spec: Spec) -> Measured | None:
    """An epoch timed from the newest io-search of the same workload and data: the training rows
    at the samples/s of the spec's own data settings where the search timed them, else of the
    fastest. The start-up and the gaps between trials are not timed there."""
    meta_path = Path(location.absolute(spec.data.path)) / "meta.json"
    if location.is_uri(str(spec.data.path)) or not meta_path.is_file():
        return None
    rows = json.loads(meta_path.read_text()).get("rows", {})
    for experiment_dir in _experiments(spec, lambda name: "-io_search-" in name):
        table_path = experiment_dir / "io_search.parquet"
        if not table_path.is_file():
            continue
        ran = experiment.load_spec(experiment_dir)
        if ran.workload != spec.workload or location.absolute(ran.data.path) != location.absolute(spec.data.path):
            continue
        table = pd.read_parquet(table_path).dropna(subset=["samples_per_s"])
        if table.empty or not rows.get("train"):
            continue
        own = table
        for knob in [c for c in table.columns if c in spec.fixed]:
            own = own[own[knob].astype(str) == str(spec.fixed[knob])]
        row, which = (own.iloc[0], "the spec's settings") if len(own) else (table.iloc[0], "the fastest settings")
        # validation reads the val rows once per epoch, forward only: about a third of a training step per row
        epoch_s = (rows["train"] + rows.get("val", 0) / 3) / float(row["samples_per_s"])
        return Measured(Timing(epoch_s=epoch_s), overhead_s=math.nan,
                        source=f"io-search {experiment.home(experiment_dir)}: {float(row['samples_per_s']):,.0f} "
                               f"samples/s at {which}, over {rows['train']:,} training rows",
                        experiment=str(experiment_dir))
    return None


def _experiments(spec: Spec, keep) -> list[Path]:
    """The spec's storage's experiment folders whose names `keep` accepts, newest first (a
    bucket's are not searched: the plan says so)."""
    storage = location.absolute(spec.storage_path)
    if location.is_uri(storage) or not Path(storage).is_dir():
        return []
    found = [p for p in Path(storage).iterdir() if p.is_dir() and keep(p.name)
             and (p / experiment.SNAPSHOT_FILE).is_file()]
    return sorted(found, key=lambda p: (p / experiment.SNAPSHOT_FILE).stat().st_mtime, reverse=True)
