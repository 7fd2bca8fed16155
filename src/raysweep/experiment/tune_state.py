"""Reading what Tune saved of a sweep: its trials (the experiment state) and each trial's reports.

Tune's own `ExperimentAnalysis` reads the saved trials, less the part of it that does not scale:
it reads every trial's reports into frames up front (a minute and gigabytes at 10,000 trials).
A trial's reports are read only by who needs them, as Tune writes them, into plain dicts. The
trials journal (journal.py) keeps Tune's own record of a trial, which `trial_of_record` turns
back into a Tune trial.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pandas as pd
from ray.tune import ExperimentAnalysis
from ray.tune.experiment.trial import Trial

from raysweep.experiment.names import PROGRESS_FILE, RESULT_FILE, TUNE_STATE_GLOB

# Tune warns on every load about each trial without result files: those ended before their first
# report (an error in epoch 1, a stall, a kill), which the results store shows as such. No news.
TUNE_ANALYSIS_LOGGER = "ray.tune.analysis.experiment_analysis"


class SavedState(ExperimentAnalysis):
    """Tune's saved trials without every trial's reports, which ExperimentAnalysis reads into
    frames up front (a minute and gigabytes at 10,000 trials); who needs a trial's reports reads
    that trial's (analysis.trial_rows.history)."""

    def _fetch_trial_dataframes(self) -> dict:
        return {}


def saved_trials(experiment_dir: str | Path) -> list:
    """The trials of Tune's saved experiment state (statuses as saved, paths where the
    experiment now lies)."""
    if not any(Path(experiment_dir).glob(TUNE_STATE_GLOB)):
        return []   # a sweep that has just started: Tune saves its first state with its first trials
    logger = logging.getLogger(TUNE_ANALYSIS_LOGGER)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        return SavedState(str(Path(experiment_dir).resolve())).trials
    finally:
        logger.setLevel(level)


def trial_of_record(tune_state: str, run_metadata: str):
    """A Tune trial from its own JSON record (what the trials journal keeps), for reading only."""
    trial = Trial.from_json_state(tune_state, stub=True)
    trial.restore_run_metadata(run_metadata)
    return trial


def flat(report: dict, prefix: str = "") -> dict:
    """A report with nested mappings as "outer/inner" keys (as pandas.json_normalize makes them)."""
    out = {}
    for key, value in report.items():
        if isinstance(value, dict) and value:
            out.update(flat(value, f"{prefix}{key}/"))
        else:
            out[f"{prefix}{key}"] = value
    return out


def trial_reports(trial_dir: str | Path) -> list[dict]:
    """Every report of a trial, read as Tune's ExperimentAnalysis reads it (result.json, else
    progress.csv), as plain dicts: pandas took 7 ms a trial, a fifth of a short trial's cost to
    the driver (bench/scale.py)."""
    trial_dir = Path(trial_dir)
    if (trial_dir / RESULT_FILE).is_file():
        lines = (trial_dir / RESULT_FILE).read_text().splitlines()
        return [flat(json.loads(line)) for line in lines if line.strip()]
    if (trial_dir / PROGRESS_FILE).is_file() and (trial_dir / PROGRESS_FILE).stat().st_size:
        return pd.read_csv(trial_dir / PROGRESS_FILE, dtype={"trial_id": str}).to_dict("records")
    return []


def latest_per_epoch(reports: list[dict]) -> list[dict]:
    """A resumed or retried trial re-runs the epochs after its last checkpoint: the re-run counts."""
    if not any("epoch" in r for r in reports):
        return reports
    last = {r.get("epoch"): i for i, r in enumerate(reports)}
    return [r for i, r in enumerate(reports) if last[r.get("epoch")] == i]


def live_trial_dir(trial, name: str = RESULT_FILE) -> Path:
    """Where a live trial's file `name` is current: the driver's copy, which Tune writes first
    (and copies to the experiment now and then), or, where the driver has none (a trial that a
    resumed sweep has not run again), the experiment's."""
    local = Path(trial.local_path) if trial.local_path else None
    return local if local and (local / name).is_file() else Path(trial.path)
