"""The names of an experiment's files and folders: raysweep's own, and those Tune writes.

The package docstring draws where each lies. They are kept apart from the code that writes or
reads them because many write or read each: raysweep's own records are written by the runner
(stalled trials), the datasets' checks, `raysweep champion` and the analysis (report, plots),
and read back here and by the store; Tune's are read here, by the store and by the analysis.
This module imports nothing, so every other module of the package may take its names from it.
The spec snapshot's name, `spec.SNAPSHOT_FILE`, sits with the spec, which checks a warm
start's experiment for it.
"""

# raysweep's own
PROVENANCE_FILE = "provenance.json"   # who ran what, when, with which versions (provenance.py)
TRAIN_RUNS_DIR = "train_runs"   # TorchTrainer trials keep their checkpoints here (checkpoints.py)
HOME_FILE = ".raysweep_home"    # in a working copy: the URI of the experiment it copies (working_copy.py)
LOCK_FILE = ".raysweep.lock"    # held by the process that runs or resumes the experiment (lock.py)
STALLED_FILE = "stalled.json"   # trials stopped for reporting nothing too long (runner/watchdog.py)
DATA_WARNINGS_FILE = "data_warnings.json"   # what validation found the data cannot teach (datasets.teachability)
DATA_FINGERPRINT_FILE = "data_fingerprint.json"   # which val and test data the sweep ran on (datasets.fingerprint)
CHAMPION_DECISION_FILE = "champion_decision.json"  # what `raysweep champion` decided of this experiment's best trial
REPORT_FILE = "report.html"     # `raysweep report` (analysis/report.py)
PLOTS_DIR = "plots"             # `raysweep plots` (analysis/plots.py)

# Tune's own
TUNE_STATE_GLOB = "experiment_state-*.json"   # Tune's experiment state, the truth about its trials
RESULT_FILE, PROGRESS_FILE = "result.json", "progress.csv"   # a trial's reports, as Tune writes them
ERROR_FILE = "error.txt"   # a failed trial's tracebacks, one block per failed attempt, as Tune writes them
