"""The experiment directory: where a run's spec, provenance, Tune state and checkpoints live.

    storage_path/<name>[-<phase>]-<timestamp>/
        raysweep_spec.yaml    the validated spec as run (overrides applied, paths absolute):
                              all `raysweep resume`, `rank`, `report` and `export` need
        provenance.json       who ran what, when, with which versions (one entry per run/resume)
        data_warnings.json, data_fingerprint.json, stalled.json, champion_decision.json
                              raysweep's small records of the run
        ended_trials/, started_trials/
                              the trials journal: each trial's start and end as it happens
        experiment_state-*.json, <trial dirs>/
                              Tune's own: its trials, and their params, results, checkpoints
                              (of in-trial runs)
        train_runs/           checkpoints of TorchTrainer trials, one Train run per trial
        trials.parquet, curves.parquet, leaderboard.*, plots/, report.html   (raysweep.analysis)

This package creates the directory and owns raysweep's own files in it; the analysis writes its
files beside them. One module a job, and everything above imports the package, not its modules
(`experiment.create`, `experiment.home`, `experiment.REPORT_FILE`):

    names          the names of the files and folders above
    working_copy   an experiment at a URI, worked on through a local copy (home, pull, push, local_dir)
    provenance     who ran what, when, with which versions
    directory      creating the directory with the spec snapshot, reading the spec back
    records        raysweep's small json records (data warnings and fingerprint, stalled, champion)
    lock           one process runs or resumes the experiment at a time
    tune_state     reading Tune's saved trials and each trial's reports
    checkpoints    where a trial's checkpoints are, under either executor
    journal        each trial's start and end, on the experiment's storage as it happens
    playbook       a playbook's record: each phase's decision and its evidence (playbook.json)
                   (both imported by who needs them: `from raysweep.experiment import journal`)
"""

from raysweep.experiment.checkpoints import checkpoint_dir, train_run_name, train_runs, trial_checkpoints
from raysweep.experiment.directory import create, created, load_spec, snapshot
from raysweep.experiment.lock import held
from raysweep.experiment.names import (
    CHAMPION_DECISION_FILE,
    DATA_FINGERPRINT_FILE,
    DATA_WARNINGS_FILE,
    ERROR_FILE,
    HOME_FILE,
    LOCK_FILE,
    PLOTS_DIR,
    PROGRESS_FILE,
    PROVENANCE_FILE,
    REPORT_FILE,
    RESULT_FILE,
    STALLED_FILE,
    TRAIN_RUNS_DIR,
    TUNE_STATE_GLOB,
)
from raysweep.experiment.provenance import read_provenance, record_provenance, versions
from raysweep.experiment.records import (
    champion_decision,
    data_fingerprint,
    data_warnings,
    stalled_trials,
    write_data_fingerprint,
    write_data_warnings,
)
from raysweep.experiment.tune_state import (
    TUNE_ANALYSIS_LOGGER,
    SavedState,
    flat,
    latest_per_epoch,
    live_trial_dir,
    saved_trials,
    trial_of_record,
    trial_reports,
)
from raysweep.experiment.working_copy import cache_dir, home, is_copy, local_dir, pull, push, tune_location
from raysweep.spec import SNAPSHOT_FILE

__all__ = [
    "CHAMPION_DECISION_FILE", "DATA_FINGERPRINT_FILE", "DATA_WARNINGS_FILE", "ERROR_FILE", "HOME_FILE", "LOCK_FILE",
    "PLOTS_DIR", "PROGRESS_FILE", "PROVENANCE_FILE", "REPORT_FILE", "RESULT_FILE", "SNAPSHOT_FILE", "STALLED_FILE",
    "TRAIN_RUNS_DIR", "TUNE_ANALYSIS_LOGGER", "TUNE_STATE_GLOB", "SavedState",
    "cache_dir", "champion_decision", "checkpoint_dir", "create", "created", "data_fingerprint", "data_warnings",
    "flat", "held", "home", "is_copy", "latest_per_epoch", "live_trial_dir", "load_spec", "local_dir", "pull", "push",
    "read_provenance", "record_provenance", "saved_trials", "snapshot", "stalled_trials", "train_run_name",
    "train_runs", "trial_checkpoints", "trial_of_record", "trial_reports", "tune_location", "versions",
    "write_data_fingerprint", "write_data_warnings",
]
