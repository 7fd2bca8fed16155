"""What the console shows while a sweep runs: one line per ended trial, and the live status
between them (a line redrawn in place on a terminal, a plain line now and then in a pipe).

The progress callback travels with Tune's experiment state, so it must pickle; a resumed sweep
runs the first run's unpickled callback, so the console setting is read when it prints.
"""

from __future__ import annotations

import builtins
import fcntl
import io
import os
import pty
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from types import SimpleNamespace

import pytest
from ray import cloudpickle

from raysweep import spec as spec_mod
from raysweep.checks import duration_text
from raysweep.cli.parser import build_parser
from raysweep.phases import sweep
from raysweep.runner import live_status, session
from raysweep.runner.live_status import CLEAR_TO_EOL, TrialView
from raysweep.runner.progress import ProgressLines
from raysweep.search.space import Param

from conftest import write_spec


@pytest.fixture(autouse=True)
def loud_console():
    """Each test starts, and leaves this process, with the console not quiet."""
    live_status.configure(quiet=False)
    yield
    live_status.configure(quiet=False)


def test_progress_callback_pickles_even_when_print_is_replaced(monkeypatch):
    # Ray and test runners swap builtins.print; a stored reference to it then cannot pickle.
    monkeypatch.setattr(builtins, "print", lambda *a, **k: None)
    callback = ProgressLines(metric="val_loss", mode="min", params=(), total=2, planned_epochs=3)
    restored = cloudpickle.loads(cloudpickle.dumps(callback))
    assert restored.metric == "val_loss" and restored.total == 2


# --- the status line, from given trials -------------------------------------------------------

def view(trial_id, status, epochs, *, epoch_s=2.0, last=None, best=None) -> TrialView:
    return TrialView(trial_id, status, epochs, epochs * epoch_s, last, best)


SWEEP = [view("t0", "TERMINATED", 2, last=0.9, best=0.8),      # stopped early at 2 of 6 epochs
         view("t1", "TERMINATED", 6, last=0.6, best=0.5),
         view("t2", "RUNNING", 3, last=0.7, best=0.65),
         view("t3", "RUNNING", 1, last=1.2, best=1.2),
         view("t4", "PENDING", 0)]


def test_status_counts_what_is_done_against_what_is_planned():
    status = live_status.summarize(SWEEP, metric="val_loss", mode="min", total=6, planned_epochs=6,
                                   at_once=2, elapsed_s=75)
    # ended trials count the epochs they ran; the 4 others (3 created, 1 not yet) the 6 planned
    assert (status.trials_done, status.epochs_done, status.epochs_planned) == (2, 12, 2 + 6 + 4 * 6)
    assert status.epoch_s == pytest.approx(2.0) and status.best == (0.5, "t1")
    # 20 epochs left at 2 s each, two at a time
    assert live_status.eta_s(status) == pytest.approx(20.0)
    line = live_status.render(status)
    assert line.startswith("2/6 trials, 12/32 epochs, 1m15s elapsed, ETA 20s; best val_loss 0.5 (t1); ")
    assert line.endswith("running t2 epoch 3/6 0.7, t3 epoch 1/6 1.2; 1 waiting to start")


def test_status_of_a_metric_to_maximise_and_of_the_last_trials():
    trials = [view("a", "TERMINATED", 4, best=0.7), view("b", "RUNNING", 1, epoch_s=3.0, best=0.9)]
    status = live_status.summarize(trials, metric="val_auc", mode="max", total=2, planned_epochs=4,
                                   at_once=4, elapsed_s=5)
    assert status.best == (0.9, "b")
    # one trial is left, so four at once do not speed it up: 3 epochs of (4*2 + 1*3) / 5 s
    assert live_status.eta_s(status) == pytest.approx(3 * 11 / 5)


def test_status_before_the_first_epoch_and_with_many_running():
    trials = [view(f"t{i}", "RUNNING", 0) for i in range(6)]
    line = live_status.render(live_status.summarize(trials, metric="val_loss", mode="min", total=None,
                                                    planned_epochs=3, at_once=6, elapsed_s=3))
    assert line == ("0 trials, 0 epochs, 3s elapsed, ETA after the first epoch; no val_loss yet; "
                    "running t0 starting, t1 starting, t2 starting, t3 starting and 2 more")


@pytest.mark.parametrize("seconds, shown", [(0.4, "0s"), (59.6, "1m00s"), (245, "4m05s"), (7620, "2h07m")])
def test_durations(seconds, shown):
    assert duration_text(seconds) == shown


def test_a_line_is_cut_to_the_terminal_width():
    assert live_status.fit("x" * 200, 80) == "x" * 76 + "..."
    assert live_status.fit("short", 80) == "short"


def test_the_period_in_a_pipe_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv(live_status.EVERY_S_ENV, "2.5")
    assert live_status.pipe_every_s() == 2.5
    for wrong in ("soon", "0"):
        monkeypatch.setenv(live_status.EVERY_S_ENV, wrong)
        assert live_status.pipe_every_s() == live_status.PIPE_EVERY_S


# --- the callback: when and how it prints --------------------------------------------------------

def tune_trial(trial_id, status, epoch=0, value=None):
    """What the callback reads of a Tune trial."""
    result = {"epoch": epoch, "time_total_s": 1.5 * epoch, "val_loss": value} if epoch else {}
    analysis = {"val_loss": {"min": value, "max": value}} if epoch else {}
    return SimpleNamespace(trial_id=trial_id, status=status, config={}, error_file=None,
                           run_metadata=SimpleNamespace(last_result=result, metric_analysis=analysis))


class Terminal(io.StringIO):
    def isatty(self):
        return True


def callback() -> ProgressLines:
    made = ProgressLines(metric="val_loss", mode="min", params=(), total=2, planned_epochs=3)
    made.shown_at = float("-inf")   # due now
    return made


def test_on_a_terminal_the_status_is_redrawn_and_cleared_before_a_trial_line(monkeypatch):
    screen = Terminal()
    monkeypatch.setattr(sys, "stdout", screen)
    monkeypatch.setenv("COLUMNS", "200")   # shutil.get_terminal_size reads it first
    progress = callback()
    trials = [tune_trial("t0", "RUNNING", 3, 0.5), tune_trial("t1", "RUNNING", 1, 0.8)]
    progress.on_step_begin(iteration=1, trials=trials)
    progress.on_step_end(iteration=1, trials=trials)
    progress.on_step_end(iteration=2, trials=trials)    # within TTY_EVERY_S: not drawn again
    progress.on_trial_complete(1, trials, trials[0])
    drawn = screen.getvalue()
    # 2 epochs left of 1.5 s, two trials at a time
    assert drawn.startswith("\r0/2 trials, 4/6 epochs, 0s elapsed, ETA 2s; best val_loss 0.5 (t0); "
                            "running t0 epoch 3/3 0.5, t1 epoch 1/3 0.8" + CLEAR_TO_EOL)
    assert drawn.count("ETA") == 1
    line = drawn.split(CLEAR_TO_EOL + "\r" + CLEAR_TO_EOL)[1]   # the status, cleared, then the trial's line
    assert re.fullmatch(r"\[1/2 +\d+s\] t0 finished 3 epochs: val_loss 0\.5; best 0\.5 \(t0\) \| \n", line)


def test_in_a_pipe_the_status_is_a_line_of_its_own(capsys):
    progress = callback()
    progress.on_step_end(iteration=1, trials=[tune_trial("t0", "RUNNING", 1, 0.5), tune_trial("t1", "PENDING")])
    # 5 epochs left of 1.5 s, one trial at a time so far
    assert capsys.readouterr().out == ("status: 0/2 trials, 1/6 epochs, 0s elapsed, ETA 8s; best val_loss 0.5 (t0); "
                                       "running t0 epoch 1/3 0.5; 1 waiting to start\n")
    progress.shown_at = float("-inf")
    progress.on_step_end(iteration=2, trials=[tune_trial("t0", "TERMINATED", 3, 0.4),
                                              tune_trial("t1", "TERMINATED", 3, 0.6)])
    assert capsys.readouterr().out == ""   # all ended: the trial lines and the leaderboard say the rest


def test_a_costly_status_is_drawn_less_often(capsys, monkeypatch):
    monkeypatch.setenv(live_status.EVERY_S_ENV, "0.5")
    progress = callback()
    progress.shown_at = time.monotonic() - 1    # one period has passed
    progress.status_cost_s = 0.1                # ... but summing up the trials took 0.1 s: wait 2 s
    progress.on_step_end(iteration=1, trials=[tune_trial("t0", "RUNNING", 1, 0.5)])
    assert capsys.readouterr().out == ""
    progress.status_cost_s = 0.0
    progress.on_step_end(iteration=2, trials=[tune_trial("t0", "RUNNING", 1, 0.5)])
    assert capsys.readouterr().out.startswith("status: 0/2 trials, 1/6 epochs")


def test_quiet_is_honoured_by_a_callback_unpickled_on_resume(capsys):
    resumed = cloudpickle.loads(cloudpickle.dumps(callback()))   # what Tuner.restore hands back
    live_status.configure(quiet=True)                             # what `raysweep resume --quiet` sets
    resumed.shown_at = float("-inf")
    trial = tune_trial("t0", "RUNNING", 3, 0.5)
    resumed.on_step_end(iteration=1, trials=[trial])
    resumed.on_trial_complete(1, [trial], trial)
    assert capsys.readouterr().out == ""


def test_a_resumed_sweeps_trial_lines_count_the_trials_of_the_first_run(capsys):
    first = ProgressLines(metric="val_loss", mode="min", params=(Param("learning_rate", "loguniform", 1e-4, 1e-1),),
                          total=3, planned_epochs=3)
    resumed = cloudpickle.loads(cloudpickle.dumps(first))   # its own state is the first run's start
    trials = [tune_trial("t0", "TERMINATED", 3, 0.4), tune_trial("t1", "ERROR", 1, 0.9),
              tune_trial("t2", "RUNNING", 2, 0.7)]   # t0 and t1 ended before the interruption
    trials[2].config = {"learning_rate": 0.01}
    resumed.on_step_begin(1, trials)   # Tune's first step in the resuming process
    resumed.on_trial_complete(1, trials, trials[2])
    assert re.fullmatch(r"\[3/3 +0s\] t2 stopped at epoch 2: val_loss 0\.7; best 0\.4 \(t0\) \| learning_rate=0\.01\n",
                        capsys.readouterr().out)


def test_the_dashboard_is_printed_or_its_absence_explained(capsys, caplog):
    session.show_dashboard("127.0.0.1:8265", None)
    assert capsys.readouterr().out == "dashboard: http://127.0.0.1:8265\n"
    session.show_dashboard("", "10.0.0.5:6379")
    assert capsys.readouterr().out == "" and "10.0.0.5:6379 runs no dashboard" in caplog.text


@pytest.mark.parametrize("command", [["run", "spec.yaml"], ["resume", "results/x"]])
def test_run_and_resume_take_the_watch_options(command):
    assert not build_parser().parse_args(command).quiet
    parsed = build_parser().parse_args([*command, "--quiet", "--dashboard"])
    assert parsed.quiet and parsed.dashboard


# --- real sweeps: `raysweep run` on a pseudo-terminal and in a pipe ------------------------------

RUN_TIMEOUT_S = 240
TRIAL_LINE = re.compile(r"\[\d/4 +\d+s\] \w+ finished 6 epochs: val_loss [\d.e+-]+; best [\d.e+-]+ \(\w+\) "
                        r"\| learning_rate=[\d.e+-]+")


def four_trials(raw_spec: dict) -> dict:
    """Two pairs of trials of 6 epochs: the status has measured epochs while trials remain."""
    raw_spec["fixed"]["epochs"] = 6
    raw_spec["search"]["num_samples"] = 4
    return raw_spec


def run_on_a_terminal(args: list[str], env: dict, columns: int) -> str:
    """`raysweep ARGS` with stdout and stderr on a pseudo-terminal (`columns` wide); all it wrote there."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    proc = subprocess.Popen([sys.executable, "-m", "raysweep.cli", *args], stdin=subprocess.DEVNULL,
                            stdout=slave, stderr=slave, env=env, start_new_session=True)
    os.close(slave)
    written, deadline, quiet_since = bytearray(), time.monotonic() + RUN_TIMEOUT_S, None
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            chunk = b""
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:   # EIO: every writer has closed the terminal
                    break
            written += chunk
            if proc.poll() is not None and not chunk:
                quiet_since = quiet_since or time.monotonic()
                if time.monotonic() - quiet_since > 2:   # a Ray process may hold the terminal a moment longer
                    break
        else:
            os.killpg(proc.pid, signal.SIGKILL)
    finally:
        os.close(master)
    assert proc.wait(timeout=30) == 0, written.decode(errors="replace")[-4000:]
    return written.decode(errors="replace")


@pytest.mark.slow
def test_a_sweep_on_a_terminal_redraws_one_status_line(raw_spec, tmp_path):
    """Its own local Ray, with the dashboard: says it starts Ray, prints the dashboard's URL, redraws
    the status with an ETA in place, and prints each trial's line whole."""
    path = write_spec(tmp_path, four_trials(raw_spec))
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    output = run_on_a_terminal(["run", str(path), "--dashboard"], env, columns=100)
    lines = output.replace("\r\n", "\n").split("\n")
    assert any(re.fullmatch(r"dashboard: http://127\.0\.0\.1:\d+", line) for line in lines), output
    start = next(i for i, line in enumerate(lines) if "raysweep: starting a local Ray" in line)
    # what a terminal shows of each line: what follows its last carriage return
    shown = [line.split("\r")[-1].replace(CLEAR_TO_EOL, "") for line in lines]
    trial_lines = [i for i, line in enumerate(shown) if TRIAL_LINE.fullmatch(line)]
    assert len(trial_lines) == 4 and start < trial_lines[0], output
    drawn = [part for line in lines for part in line.split("\r") if "trials, " in part]
    assert any(re.match(r"\d/4 trials, \d+/\d+ epochs, \d+s elapsed, ETA \d+s; best val_loss ", d) for d in drawn), drawn
    # drawn in place, cut to the width (never wrapped: a wrapped line could not be redrawn)
    assert all(d.endswith(CLEAR_TO_EOL) and len(d.removesuffix(CLEAR_TO_EOL)) < 100 for d in drawn), drawn
    assert any(d.endswith("..." + CLEAR_TO_EOL) for d in drawn), drawn
    assert not any(line.startswith("status:") for line in shown)


@pytest.mark.slow
def test_a_sweep_in_a_pipe_prints_plain_status_lines(ray_session, raw_spec, tmp_path):
    """Joining a running Ray, with the period shortened: the status comes as plain lines."""
    path = write_spec(tmp_path, four_trials(raw_spec))
    address = ray_session.get_runtime_context().gcs_address
    done = subprocess.run([sys.executable, "-m", "raysweep.cli", "run", str(path), "--address", address],
                          capture_output=True, text=True, timeout=RUN_TIMEOUT_S,
                          env={**os.environ, live_status.EVERY_S_ENV: "0.5"})
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert f"raysweep: joining the Ray cluster at {address}" in done.stderr
    assert "raysweep: reading " in done.stderr and " shards of train, val) ..." in done.stderr
    out = done.stdout
    assert "\r" not in out and "\x1b" not in out
    status = [line for line in out.splitlines() if line.startswith("status: ")]
    assert status and any(re.match(r"status: \d/4 trials, \d+/\d+ epochs, \d+s elapsed, ETA \d+s", s) for s in status)
    assert sum(bool(TRIAL_LINE.fullmatch(line)) for line in out.splitlines()) == 4


@pytest.mark.slow
def test_a_quiet_sweep_prints_no_progress(ray_session, raw_spec, capsys, monkeypatch):
    """`sweep.run(quiet=True)` (`raysweep run --quiet`): no status and no trial lines, even where
    a status is due at every step."""
    monkeypatch.setenv(live_status.EVERY_S_ENV, "0.01")
    raw_spec["search"]["num_samples"] = 1
    experiment_dir = sweep.run(spec_mod.validate(raw_spec), quiet=True)
    out = capsys.readouterr().out
    assert "status:" not in out and not re.search(r"^\[1/1", out, re.M), out
    assert (experiment_dir / "raysweep.log").read_text().count("sweep tiny:") == 1   # the log keeps its lines
