"""A killed driver loses nothing: `kill -9` of `raysweep run` mid-sweep, then `raysweep resume`.

The sweep runs as the real command in a process of its own. It is killed with SIGKILL (no
handler runs, nothing is flushed) as soon as one trial has finished while others have not;
`resume` must then finish the sweep without running a finished trial again and with every
epoch of every trial reported.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from raysweep.analysis import store
from raysweep.cli import exit_codes
from raysweep.workloads import load_workload

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
RAYSWEEP = str(Path(sys.executable).with_name("raysweep"))
EPOCHS = 6
SLOW = "    time.sleep(0.3)   # an epoch long enough to be killed in\n"


def reports(trial_dir: Path) -> list[dict]:
    path = trial_dir / "result.json"
    lines = path.read_text().splitlines() if path.is_file() else []
    out = []
    for line in lines:
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:   # a line still being written
            pass
    return out


def project(tmp_path: Path) -> Path:
    source = (ROOT / "examples" / "linear" / "linear.py").read_text()
    source = source.replace("def compute_metrics(outputs, labels, meta):          # numpy arrays: the whole validation split\n",
                            "def compute_metrics(outputs, labels, meta):\n" + SLOW)
    (tmp_path / "linear.py").write_text("import time\n" + source)
    load_workload(str(tmp_path / "linear.py")).DATA.write(tmp_path / "data")
    raw = {"name": "crash", "workload": "./linear.py", "data": {"path": str(tmp_path / "data")},
           "metric": "val_loss", "mode": "min", "fixed": {"epochs": EPOCHS, "batch_size": 1000},
           "params": {"hidden_units": {"type": "choice", "values": [8, 16, 32, 64]}},
           "search": {"algorithm": "grid"}, "resources": {"max_concurrent_trials": 2},
           "storage_path": str(tmp_path / "results")}
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(raw))
    return tmp_path / "spec.yaml"


def test_sigkill_of_the_driver_then_resume_loses_nothing(tmp_path):
    env = {**os.environ, "RAY_ADDRESS": ""}
    driver = subprocess.Popen([RAYSWEEP, "run", str(project(tmp_path))], env=env, start_new_session=True,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    finished_before: set[str] = set()
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and not finished_before:
            for trial_dir in (tmp_path / "results").glob("*/run_in_trial_*"):
                if any(r.get("epoch") == EPOCHS for r in reports(trial_dir)):
                    finished_before.add(trial_dir.name)
            time.sleep(0.05)
        assert finished_before, "no trial finished within the time allowed"
        os.kill(driver.pid, signal.SIGKILL)
        driver.wait(timeout=30)
    finally:
        try:
            os.killpg(driver.pid, signal.SIGKILL)   # the Ray it started, if anything is left
        except ProcessLookupError:
            pass
    (experiment_dir,) = (tmp_path / "results").iterdir()
    before = {d.name: len(reports(d)) for d in experiment_dir.glob("run_in_trial_*")}
    assert sum(n < EPOCHS for n in before.values()) + (4 - len(before)) >= 1, "the kill left work to resume"

    resumed = subprocess.run([RAYSWEEP, "resume", str(experiment_dir)], env=env, capture_output=True,
                             text=True, timeout=300, start_new_session=True)
    assert resumed.returncode == exit_codes.OK, resumed.stdout[-2000:] + resumed.stderr[-2000:]
    trials = store.load(experiment_dir).trials
    assert len(trials) == 4 and set(trials["status"]) == {"finished"}, trials[["status", "error"]]
    curves = store.load(experiment_dir).curves
    for trial, curve in curves.groupby("trial"):
        assert sorted(curve["epoch"]) == list(range(1, EPOCHS + 1)), f"{trial} lost an epoch"
    for name in finished_before:   # not run again: each epoch reported once, as before the kill
        epochs = [r["epoch"] for r in reports(experiment_dir / name)]
        assert epochs == list(range(1, EPOCHS + 1)), (name, epochs)
