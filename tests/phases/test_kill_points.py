"""A driver killed at any point of a sweep loses and repeats nothing, wherever the experiment lives.

The sweep runs as the real command (tests/phases/killed_driver.py), which kills itself with
SIGKILL at its Nth trial event (a report, a trial's end): after the sweep's own callbacks have
handled it, or before they see it. `raysweep resume` then runs from another working directory.
Each kill point must give:

- resume exits 0 and no traceback reaches the console;
- no trial whose end was printed before the kill reports again after it (a scheduler's stop is
  as final as a finish);
- every report the driver had handled before the kill is in the results store, and every
  planned trial ended.

`make test` kills at a sample of points, on local storage (random search, whose trial ids come
back the same, and Optuna's, whose do not), in a bucket (moto's S3 server), and with a training
loop of the user's own (examples/own_loop); `make test-kill` at every point of each
(RAYSWEEP_KILL_POINTS=all; or a list, "after:2,before:3").
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.fs as pafs
import pytest
import yaml

from raysweep import experiment
from raysweep.analysis import store
from raysweep.workloads import load_workload

from conftest import BUCKET, free_port

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
DRIVER = Path(__file__).with_name("killed_driver.py")
# "all", or points to try ("after:2,before:3"); unset: SAMPLE
CHOSEN = os.environ.get("RAYSWEEP_KILL_POINTS", "")
EVERY_POINT = CHOSEN == "all"
TRIALS, EPOCHS = 4, 3
# (storage, searcher, workload) -> the point `make test` kills at: before or after the driver's
# own handling of an event in each storage, a searcher that learns from the journal, and an own
# loop (bucket before:5 is where a trial was once added twice); `make test-kill` kills at all.
SAMPLE = {("local", "random", "linear"): ["after:2"],
          ("local", "optuna", "linear"): ["before:7"],
          ("bucket", "random", "linear"): ["before:5"],
          ("local", "random", "own_loop"): ["after:3"]}
ENDED_LINE = re.compile(r"\] (\S+) (?:finished|stopped|failed)")


@pytest.fixture(scope="module")
def joinable_ray(s3):
    """A Ray of the module's own that the killed drivers join (a driver's death ends its trials,
    not the Ray), with the bucket's endpoint and keys in its workers' environment."""
    with tempfile.TemporaryDirectory(prefix="rk-", dir="/tmp") as ray_tmp:
        port = free_port()
        env = {**os.environ, **s3, "RAY_TMPDIR": ray_tmp}
        head = subprocess.Popen(
            [str(Path(sys.executable).with_name("ray")), "start", "--head", "--block", f"--port={port}",
             "--num-cpus=2", "--include-dashboard=false", "--node-ip-address=127.0.0.1",
             '--resources={"raysweep_trial_driver": 1000}'],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            deadline = time.monotonic() + 60
            while subprocess.run([str(Path(sys.executable).with_name("ray")), "status", f"--address=127.0.0.1:{port}"],
                                 env={**env, "RAY_AUTH_MODE": "token"}, capture_output=True).returncode:
                assert time.monotonic() < deadline and head.poll() is None, "the module's Ray did not start"
                time.sleep(1)
            yield {**env, "RAY_ADDRESS": f"127.0.0.1:{port}", "RAY_AUTH_MODE": "token"}
        finally:
            os.killpg(head.pid, signal.SIGKILL)
            head.wait(timeout=30)


def project(tmp_path: Path, storage: str, searcher: str, workload: str) -> Path:
    """The README's linear workload (or its own loop) with epochs slow enough to be killed in,
    under ASHA."""
    if workload == "own_loop":
        source = (ROOT / "examples" / "own_loop" / "own_loop.py").read_text()
        source = source.replace("        session.report(", "        time.sleep(0.2)\n        session.report(")
    else:
        source = (ROOT / "examples" / "linear" / "linear.py").read_text()
        source = source.replace("def compute_metrics(outputs, labels, meta):          # numpy arrays: the whole "
                                "validation split\n", "def compute_metrics(outputs, labels, meta):\n    time.sleep(0.2)\n")
    (tmp_path / "workload.py").write_text("import time\n" + source)
    load_workload(str(tmp_path / "workload.py")).DATA.write(tmp_path / "data")
    raw = {"name": "killed", "workload": "./workload.py", "data": {"path": str(tmp_path / "data")},
           "metric": "val_loss", "mode": "min", "fixed": {"epochs": EPOCHS, "batch_size": 1000},
           "params": {"hidden_units": {"type": "randint", "low": 4, "high": 64},
                      "learning_rate": {"type": "loguniform", "low": 1e-3, "high": 1e-1}},
           "search": {"algorithm": searcher, "num_samples": TRIALS, "seed": 0},
           "scheduler": {"type": "asha", "grace_period": 1, "reduction_factor": 2},
           "resources": {"max_concurrent_trials": 2}, "checkpoints": {"keep_top": 2}, "storage_path": storage}
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(raw))
    return tmp_path / "spec.yaml"


def driver(args: list[str], env: dict, cwd: Path, timeout_s: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(DRIVER), *args], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=timeout_s, start_new_session=True)


def experiment_at(storage: str, env: dict) -> str:
    if not storage.startswith("s3://"):
        (found,) = Path(storage).iterdir()
        return str(found)
    bucket = pafs.S3FileSystem(endpoint_override=env["AWS_ENDPOINT_URL"])
    (found,) = bucket.get_file_info(pafs.FileSelector(storage.removeprefix("s3://"), recursive=False))
    return f"{storage}/{found.base_name}"


def killed_then_resumed(tmp_path: Path, storage: str, searcher: str, workload: str, point: str, env: dict) -> bool:
    """Run the sweep killed at `point`, resume it, check the promise; False where the sweep
    ended before it got to `point`."""
    spec = project(tmp_path, storage, searcher, workload)
    events = tmp_path / "events.jsonl"
    env = {**env, "KILL_EVENTS": str(events), "KILL_PHASE": "run", "KILL_AT": point}
    killed = driver(["run", str(spec)], env, tmp_path)
    if killed.returncode == 0:
        return False
    assert killed.returncode == -signal.SIGKILL, killed.stdout[-3000:] + killed.stderr[-3000:]
    ended_before = set(ENDED_LINE.findall(killed.stdout))
    handled = [json.loads(line) for line in events.read_text().splitlines()]
    home = experiment_at(storage, env)

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    resumed = driver(["resume", home], {**env, "KILL_PHASE": "resume", "KILL_AT": ""}, elsewhere)
    console = resumed.stdout + resumed.stderr
    assert resumed.returncode == 0, console[-4000:]
    assert "Traceback" not in console, console[-4000:]

    again = [json.loads(line) for line in events.read_text().splitlines()][len(handled):]
    rerun = {e["trial"] for e in again if e["event"] == "result"} & ended_before
    assert not rerun, f"killed at {point}: trials ended before the kill ran again: {rerun}"
    results = store.load(experiment.local_dir(home))
    assert len(results.trials) == TRIALS and "unfinished" not in set(results.trials["status"]), \
        results.trials[["trial", "status", "epochs_run"]]
    stored = set(zip(results.curves["trial"], results.curves["epoch"]))
    reported = {(e["trial"], e["epoch"]) for e in handled if e["event"] == "result" and e["where"] == "after"}
    assert reported <= stored, f"killed at {point}: reports lost: {sorted(reported - stored)}"
    return True


def one_point(tmp_path: Path, storage: str, searcher: str, workload: str, point: str, env: dict) -> bool:
    where = tmp_path / point.replace(":", "-")
    where.mkdir()
    place = f"s3://{BUCKET}/killed-{where.name}-{tmp_path.name}" if storage == "bucket" else str(where / "results")
    return killed_then_resumed(where, place, searcher, workload, point, env)


@pytest.mark.parametrize("storage, searcher, workload", list(SAMPLE))
def test_a_driver_killed_at_any_point_loses_and_repeats_nothing(storage, searcher, workload, joinable_ray, tmp_path):
    if not EVERY_POINT:
        for point in CHOSEN.split(",") if CHOSEN else SAMPLE[storage, searcher, workload]:
            assert one_point(tmp_path, storage, searcher, workload, point, joinable_ray), f"the sweep ended before {point}"
        return
    for where in ("after", "before"):   # every event, until the sweep ends before the kill
        n = 1
        while one_point(tmp_path, storage, searcher, workload, f"{where}:{n}", joinable_ray):
            n += 1
        assert n > 1, "no kill point was reached"
