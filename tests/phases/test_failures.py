"""Failed trials: one line each on the console, the tracebacks in files, an exit code that says so.

A user's workload (the README's minimal one, broken on purpose) fails in every trial or in one;
the console must show each failure in a line that names the error and where it was raised,
never a traceback, and `raysweep run` must exit 3 only when no trial got anywhere.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from raysweep import cli
from raysweep.analysis import store
from raysweep.cli import exit_codes
from raysweep.runner import logs
from raysweep.workloads import load_workload

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
BROKEN = '    if cfg.hidden_units in FAILING:\n        raise KeyError("features")\n'


COMPUTE_METRICS = "def compute_metrics(outputs, labels, meta):          # numpy arrays: the whole validation split\n"


def project(tmp_path: Path, failing: list[int], *, fault: str = BROKEN, header: str = "",
            counts_epochs: bool = False, **spec) -> Path:
    """A user's folder: the minimal workload with `fault` at the top of compute_loss (by default
    a KeyError for the widths in `failing`), `header` above it, and with `counts_epochs` a list
    VALIDATED that grows by one each validation; a spec over widths 8 and 16, `spec` on top."""
    source = (ROOT / "examples" / "linear" / "linear.py").read_text()
    source = source.replace("def compute_loss(model, batch, cfg):                 # -> (loss, outputs)\n",
                            f"FAILING = {failing}\n\ndef compute_loss(model, batch, cfg):\n" + fault)
    if counts_epochs:
        header += "VALIDATED = []\n"
        source = source.replace(COMPUTE_METRICS, "def compute_metrics(outputs, labels, meta):\n    VALIDATED.append(1)\n")
    (tmp_path / "linear.py").write_text(header + source)
    load_workload(str(tmp_path / "linear.py")).DATA.write(tmp_path / "data")
    raw = {"name": "failing", "workload": "./linear.py", "data": {"path": str(tmp_path / "data")},
           "metric": "val_loss", "mode": "min", "fixed": {"epochs": 1, "batch_size": 500},
           "params": {"hidden_units": {"type": "choice", "values": [8, 16]}},
           "search": {"algorithm": "grid"}, "storage_path": str(tmp_path / "results"), **spec}
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(raw))
    return tmp_path / "spec.yaml"


def raysweep_run(spec_file: Path, **env) -> subprocess.CompletedProcess:
    """The real command in a process of its own: what reaches its terminal is what a user sees."""
    return subprocess.run([str(Path(sys.executable).with_name("raysweep")), "run", str(spec_file)],
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "RAY_ADDRESS": "", **env})


ONE_WIDTH_FOUR_EPOCHS = dict(fixed={"epochs": 4, "batch_size": 500},
                             params={"hidden_units": {"type": "choice", "values": [8]}})


def test_when_every_trial_fails_the_exit_code_and_summary_say_so(tmp_path):
    done = raysweep_run(project(tmp_path, failing=[8, 16]))
    out, err = done.stdout, done.stderr
    assert done.returncode == exit_codes.ALL_TRIALS_FAILED, out + err
    assert "Traceback" not in out + err, "tracebacks go to files, not the console"
    assert "Token authentication" not in err and "Progress bars disabled" not in err
    failed_lines = [line for line in out.splitlines() if " failed: " in line]
    assert len(failed_lines) == 2
    assert all("KeyError: 'features' (compute_loss, linear.py:" in line for line in failed_lines)
    assert "all 2 trials failed:\n  2 errored: KeyError: 'features' (compute_loss, linear.py:" in err
    (experiment_dir,) = (tmp_path / "results").iterdir()
    log = (experiment_dir / logs.LOG_FILE).read_text()
    assert log.count("Traceback") >= 2 and 'raise KeyError("features")' in log
    assert len(list(experiment_dir.glob("*/error.txt"))) == 2
    assert cli.main(["report", str(experiment_dir)]) == exit_codes.OK
    html = (experiment_dir / "report.html").read_text()
    assert "all 2 trials failed: 2 errored: KeyError: &#x27;features&#x27; (compute_loss, linear.py:" in html


def test_one_failure_among_finished_trials_is_a_warning(ray_session, tmp_path, capsys):
    assert cli.main(["run", str(project(tmp_path, failing=[16]))]) == exit_codes.OK
    out, err = capsys.readouterr()
    assert " failed: KeyError: 'features' (compute_loss, linear.py:" in out
    assert "1 of 2 trials failed (1 errored); the ranking covers the rest only. Most often: 1 errored: " \
           "KeyError: 'features' (compute_loss, linear.py:" in err


def test_a_trial_that_stalls_is_stopped_and_named(ray_session, tmp_path, capsys):
    spec_file = project(tmp_path, failing=[], header="import time\n", failure={"stall_timeout_s": 5},
                        fault='    if cfg.hidden_units == 8:\n        time.sleep(3600)   # a hang: no error, no report\n')
    started = time.monotonic()
    assert cli.main(["run", str(spec_file)]) == exit_codes.OK
    assert time.monotonic() - started < 120, "the stalled trial was stopped, not waited for"
    out, err = capsys.readouterr()
    assert re.search(r"stopped: stalled: no report for \d+ s \(failure.stall_timeout_s 5\)", out), out
    (experiment_dir,) = (tmp_path / "results").iterdir()
    trials = store.load(experiment_dir).trials.set_index("hidden_units")
    assert trials.loc[8, "status"] == "stalled" and trials.loc[16, "status"] == "finished"
    assert trials.loc[8, "error"].startswith("stalled: no report for")


def test_a_torch_trainer_trial_that_stalls_is_saved_as_stalled(tmp_path):
    """Stopping a TorchTrainer trial kills an actor with actors of its own; Ray 2.60 then kept
    it RUNNING in the experiment state (runner/ray_fixes.py), so it read "unfinished" and the
    command said "interrupted". In a process (and a Ray) of its own: a trial killed while its
    workers start can leave their placement group behind (README, failure.stall_timeout_s),
    which would starve the tests after it of a CPU."""
    spec_file = project(tmp_path, failing=[], header="import time\n", failure={"stall_timeout_s": 30},
                        resources={"executor": "torch_trainer"},
                        params={"hidden_units": {"type": "choice", "values": [8]}},
                        fault="    time.sleep(3600)   # a hang: no error, no report\n")
    done = raysweep_run(spec_file)
    assert done.returncode == exit_codes.ALL_TRIALS_FAILED, done.stdout + done.stderr
    assert "stopped: stalled: no report for" in done.stdout and "interrupted" not in done.stdout + done.stderr
    (experiment_dir,) = (tmp_path / "results").iterdir()
    (trial,) = store.load(experiment_dir).trials.itertuples()
    assert trial.status == "stalled" and trial.error.startswith("stalled: no report for")
    again = subprocess.run([str(Path(sys.executable).with_name("raysweep")), "resume", str(experiment_dir)],
                           capture_output=True, text=True, timeout=120, env={**os.environ, "RAY_ADDRESS": ""})
    assert again.returncode == exit_codes.OK and "nothing to resume: all 1 trials" in again.stdout, again.stderr


def test_a_trial_killed_by_rays_memory_monitor_is_out_of_memory(tmp_path):
    """Ray's own memory monitor, set to act 3 GiB above what the machine uses now, kills the
    trial that takes 6 GiB; the sweep goes on (Ray 2.60 would stop: runner/ray_fixes.py), the
    other trial finishes, and the killed one reads "out of memory"."""
    meminfo = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines())
    total, available = (int(meminfo[k].split()[0]) * 1024 for k in ("MemTotal", "MemAvailable"))
    if available < (8 << 30):
        pytest.skip("needs 8 GiB of free memory to fill")
    threshold = (total - available + (3 << 30)) / total
    spec_file = project(tmp_path, failing=[], header="import time\nHOARD = []\n",
                        resources={"max_concurrent_trials": 1},   # the hog trains alone, then the other
                        fault="    if cfg.hidden_units == 8:\n        HOARD.append(torch.ones(6 << 28))   # 6 GiB\n"
                              "        time.sleep(60)\n")
    done = raysweep_run(spec_file, RAY_memory_usage_threshold=f"{threshold:.3f}", RAY_memory_monitor_refresh_ms="100")
    assert done.returncode == exit_codes.OK, done.stdout + done.stderr
    (experiment_dir,) = (tmp_path / "results").iterdir()
    trials = store.load(experiment_dir).trials.set_index("hidden_units")
    assert trials.loc[8, "status"] == "out of memory", trials[["status", "error"]]
    assert trials.loc[16, "status"] == "finished"
    assert " failed (out of memory): OutOfMemoryError: " in done.stdout, done.stdout
    assert "; lower batch_size, or run fewer trials at once" in done.stdout
    assert "Traceback" not in done.stdout + done.stderr


def test_an_exception_is_retried_from_the_last_checkpoint(ray_session, tmp_path):
    """A fault in epoch 3's training, once: with failure.max_retries 1 the trial goes on from
    its epoch-2 checkpoint and finishes, each epoch reported once."""
    marker = tmp_path / "failed_once"
    flaky = (f"    if model.training and len(VALIDATED) == 2 and not Path({str(marker)!r}).exists():\n"
             f"        Path({str(marker)!r}).write_text('x')\n"
             "        raise RuntimeError('a transient fault')\n")
    spec_file = project(tmp_path, failing=[], fault=flaky, header="from pathlib import Path\n", counts_epochs=True,
                        failure={"max_retries": 1}, **ONE_WIDTH_FOUR_EPOCHS)
    assert cli.main(["run", str(spec_file)]) == exit_codes.OK
    assert marker.exists(), "the fault happened"
    (experiment_dir,) = (tmp_path / "results").iterdir()
    trial = store.load(experiment_dir).trials.iloc[0]
    assert trial["status"] == "finished" and trial["retries"] == 1
    results = next(experiment_dir.glob("run_in_trial_*/result.json")).read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in results] == [1, 2, 3, 4], "epochs 1 and 2 ran once"


def test_a_normal_run_prints_only_what_a_user_acts_on(tmp_path):
    done = raysweep_run(project(tmp_path, failing=[]))
    assert done.returncode == exit_codes.OK, done.stdout + done.stderr
    noise = [line for line in done.stderr.splitlines() if line.strip() and not line.startswith("raysweep: ")]
    assert noise == [], "stderr holds more than raysweep's own lines"
    assert "Failed to fetch metrics" not in done.stdout + done.stderr


def test_a_trial_that_fails_midway_keeps_what_it_reported(ray_session, tmp_path):
    spec_file = project(tmp_path, failing=[], counts_epochs=True, **ONE_WIDTH_FOUR_EPOCHS,
                        fault="    if model.training and len(VALIDATED) == 2:\n        raise RuntimeError('epoch 3 breaks')\n")
    assert cli.main(["run", str(spec_file)]) == exit_codes.ALL_TRIALS_FAILED
    (experiment_dir,) = (tmp_path / "results").iterdir()
    results = store.load(experiment_dir)
    assert results.trials.iloc[0]["status"] == "errored" and results.trials.iloc[0]["epochs_run"] == 2
    assert sorted(results.curves["epoch"]) == [1, 2], "the two epochs it reported are in the store"


def test_lr_find_whose_every_test_fails_exits_3(ray_session, tmp_path, capsys):
    spec_file = project(tmp_path, failing=[8, 16], search={"algorithm": "random", "num_samples": 2, "seed": 0},
                        params={"hidden_units": {"type": "choice", "values": [8, 16]},
                                "learning_rate": {"type": "loguniform", "low": 1e-4, "high": 1e-1}},
                        lr_find={"over": ["hidden_units"], "num_steps": 20, "subset_rows": 1000})
    assert cli.main(["lr-find", str(spec_file)]) == exit_codes.ALL_TRIALS_FAILED
    out, err = capsys.readouterr()
    assert "KeyError: 'features' (compute_loss, linear.py:" in out, "each test's error in the table"
    assert "error: every range test failed; tracebacks in" in err


def test_workload_functions_that_return_the_wrong_thing_are_named(tmp_path):
    """Each width breaks another function's return; each trial fails with a line naming it,
    checked on its first batch, and the sweep ends with exit 3 and no traceback (before: Tune's
    own ValueError traceback and exit 1 for a missing metric, torch's errors for the others)."""
    source = (ROOT / "examples" / "linear" / "linear.py").read_text()
    source = source.replace(
        "def build_model(cfg, meta):\n    return ",
        "def build_model(cfg, meta):\n    if cfg.hidden_units == 64:\n        return [torch.nn.Linear(4, 1)]\n    return ")
    source = source.replace(
        "def predict(model, batch):\n    return model(batch[\"features\"])\n",
        "def predict(model, batch):\n    out = model(batch[\"features\"])\n"
        "    return out[:-1] if WIDTH[0] == 16 and not model.training else out\n")
    source = source.replace(
        "    return torch.nn.functional.mse_loss(outputs, batch[\"labels\"]), outputs\n",
        "    WIDTH[0] = cfg.hidden_units\n"
        "    if cfg.hidden_units == 8:\n        return ((outputs - batch[\"labels\"]) ** 2).mean(dim=1), outputs\n"
        "    return torch.nn.functional.mse_loss(outputs, batch[\"labels\"]), outputs\n")
    source = source.replace(COMPUTE_METRICS, COMPUTE_METRICS + "    if WIDTH[0] == 32:\n"
                            "        return {\"val_los\": float(((outputs - labels) ** 2).mean())}\n")
    (tmp_path / "linear.py").write_text("WIDTH = [0]\n" + source)
    load_workload(str(tmp_path / "linear.py")).DATA.write(tmp_path / "data")
    raw = {"name": "returns", "workload": "./linear.py", "data": {"path": str(tmp_path / "data")},
           "metric": "val_loss", "mode": "min", "fixed": {"epochs": 1, "batch_size": 500},
           "params": {"hidden_units": {"type": "grid", "values": [8, 16, 32, 64]}}, "search": {"algorithm": "grid"},
           "resources": {"max_concurrent_trials": 2}, "storage_path": str(tmp_path / "results")}
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(raw))
    done = raysweep_run(tmp_path / "spec.yaml")
    console = done.stdout + done.stderr
    assert done.returncode == exit_codes.ALL_TRIALS_FAILED, console
    assert "Traceback" not in console
    for line in ("1 errored: WorkloadReturnError: compute_loss returned a loss that is a tensor of shape [500]; it must "
                 "be a scalar tensor (reduce it, e.g. with .mean())",
                 "1 errored: WorkloadReturnError: predict returned a tensor of shape [999, 1] for a batch of 1000 rows; "
                 "its first dimension must be the batch (1000)",
                 "1 errored: WorkloadReturnError: compute_metrics returned no 'val_loss' (it returned val_los); METRICS "
                 "declares the metric val_loss",
                 "1 errored: WorkloadReturnError: build_model returned a list; it must return a torch.nn.Module"):
        assert line in done.stderr, done.stderr
