"""raysweep's small records of an experiment, json files beside Tune's state.

Each says something Tune's state does not: what validation found the data cannot teach (and
the metrics that leaves NaN), which val and test data the sweep judged its trials on, which
trials the stall watchdog stopped (runner/watchdog.py writes it), and what `raysweep champion`
decided of the experiment's best trial (deploy/champions.py writes it). Each reader gives an
empty answer for an experiment that has no such record: nothing to record, or run before
raysweep recorded it.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

from raysweep.datasets import fingerprint
from raysweep.experiment.names import CHAMPION_DECISION_FILE, DATA_FINGERPRINT_FILE, DATA_WARNINGS_FILE, STALLED_FILE
from raysweep.experiment.working_copy import push
from raysweep.spec import Spec


def write_data_warnings(experiment_dir: Path, spec: Spec) -> None:
    """Record the spec's data warnings and the metrics they leave NaN, for the store and `rank`."""
    if spec.warnings or spec.undefined_metrics:
        (Path(experiment_dir) / DATA_WARNINGS_FILE).write_text(json.dumps(
            {"warnings": list(spec.warnings), "undefined": spec.undefined_metrics}, indent=2))
        push(experiment_dir, [DATA_WARNINGS_FILE])


def data_warnings(experiment_dir: str | Path) -> dict:
    """{"warnings": [...], "undefined": {metric: why}} as the run recorded them (empty: none)."""
    path = Path(experiment_dir) / DATA_WARNINGS_FILE
    return json.loads(path.read_text()) if path.is_file() else {}


def write_data_fingerprint(experiment_dir: Path, spec: Spec) -> None:
    """Record which val and test data the sweep judges its trials on, as the sweep starts:
    `raysweep champion` compares experiments on the same val data, the registry on the same test.
    A loop that reads its own data.path (no meta.json, no shards raysweep knows) has none."""
    if not spec.data.read:
        return
    record = {**fingerprint.fingerprints(spec.data.path),
              "taken": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    (Path(experiment_dir) / DATA_FINGERPRINT_FILE).write_text(json.dumps(record, indent=2) + "\n")
    push(experiment_dir, [DATA_FINGERPRINT_FILE])


def data_fingerprint(experiment_dir: str | Path) -> dict | None:
    """{"val", "test", "path", "taken"} as the sweep recorded them; None for an experiment run
    before raysweep recorded one."""
    path = Path(experiment_dir) / DATA_FINGERPRINT_FILE
    return json.loads(path.read_text()) if path.is_file() else None


def champion_decision(experiment_dir: str | Path) -> dict | None:
    """The last decision `raysweep champion` (deploy/champions.py) made of this experiment's best trial."""
    path = Path(experiment_dir) / CHAMPION_DECISION_FILE
    return json.loads(path.read_text()) if path.is_file() else None


def stalled_trials(experiment_dir: str | Path) -> dict[str, dict]:
    """Trial id -> {"reason": why it was stopped as stalled, "attempt": the failure that made},
    for the trials the stall watchdog stopped."""
    path = Path(experiment_dir) / STALLED_FILE
    return json.loads(path.read_text()) if path.is_file() else {}
