"""One line per finished trial instead of Tune's result boxes: what ended, why, and the best so far;
and between them the live status of the running trials (live_status.py).

The per-trial lines are what a log keeps, so they are printed whole: on a terminal the status
line is cleared first and redrawn after. `live_status.CONSOLE.quiet` silences both.
"""

from __future__ import annotations

import math
import shutil
import sys
import time
from pathlib import Path

from ray.tune import Callback

from raysweep import experiment
from raysweep.errors import FAILURE_HINTS, describe_failure, failure_kind
from raysweep.runner import live_status
from raysweep.search import space

STATUS_DUTY = 20   # the status takes at most 1/20 of the driver's time, however many trials it sums up


def _short(value) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def _number(value) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not math.isnan(value) else None


def trial_view(trial, metric: str, mode: str) -> live_status.TrialView:
    """A Tune trial as the live status reads it. Its run metadata, not `trial.last_result`, which
    for a trial yet to report waits on Ray for its default result."""
    result = trial.run_metadata.last_result or {}
    epochs = result.get("epoch", result.get("training_iteration", 0))
    epochs = int(epochs) if isinstance(epochs, (int, float)) and not math.isnan(epochs) else 0
    return live_status.TrialView(
        trial_id=trial.trial_id, status=trial.status, epochs=epochs,
        seconds=_number(result.get("time_total_s")) or 0.0, last=_number(result.get(metric)),
        best=_number(trial.run_metadata.metric_analysis.get(metric, {}).get(mode)))


class ProgressLines(Callback):
    """Prints `[done/total] trial: ended how, metric; best so far` as trials end, and the live status."""

    def __init__(self, *, metric: str, mode: str, params: tuple, total: int | None,
                 planned_epochs: int, experiment_dir: str | None = None):
        self.metric, self.mode, self.params = metric, mode, params
        self.experiment_dir = experiment_dir   # where the stall watchdog says why it stopped a trial
        # No callables stored here: Tune pickles its callbacks with the experiment state.
        self.total, self.planned_epochs = total, planned_epochs
        self.done = 0
        self.best: tuple[float, str] | None = None
        self.most_running = 1   # trials seen running at once, for the ETA
        self._start_clocks()

    def _start_clocks(self) -> None:
        """This process's clocks and tallies: a resumed sweep unpickles the first run's callback
        (tuner.pkl), whose monotonic times mean nothing here and whose counts are those of its start."""
        self.started = time.monotonic()
        self.shown_at = self.started   # a log's first status line comes one period in
        self.status_cost_s = 0.0       # what drawing the status took last (thousands of trials: milliseconds)
        self.on_screen = False         # a status line is drawn on the terminal, without its newline
        self.tallied = False           # done and best counted from Tune's trials, once per process

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self.__dict__.setdefault("most_running", 1)   # pickled before the live status was
        self._start_clocks()

    def on_step_begin(self, iteration, trials, **info):
        """Before Tune's first event in this process: the trials that ended and the best value so
        far, which a resumed sweep's Tune restores; events keep them current after that."""
        if not self.tallied:
            views = [trial_view(t, self.metric, self.mode) for t in trials]
            self.done = sum(v.status in live_status.ENDED for v in views)
            self.best = live_status.best_of(views, self.mode)
            self.tallied = True

    def on_trial_result(self, iteration, trials, trial, result, **info):
        value = _number(result.get(self.metric))
        if value is not None and (self.best is None or (value < self.best[0] if self.mode == "min"
                                                        else value > self.best[0])):
            self.best = (value, trial.trial_id)

    def on_trial_start(self, iteration, trials, trial, **info):
        # Tune marks the trial RUNNING just after this call
        running = 1 + sum(t.status == live_status.RUNNING for t in trials if t is not trial)
        self.most_running = max(self.most_running, running)

    def on_step_end(self, iteration, trials, **info):
        """Tune calls this on every pass of its loop (a tenth of a second to a second apart):
        the status is drawn when it is due, not on every call."""
        if live_status.CONSOLE.quiet:
            return
        tty = sys.stdout.isatty()
        now = time.monotonic()
        every = live_status.TTY_EVERY_S if tty else live_status.pipe_every_s()
        if now - self.shown_at < max(every, STATUS_DUTY * self.status_cost_s):
            return
        self.shown_at = now
        status = self.status(trials)
        if live_status.finished(status):
            self._clear_status()
        else:
            self._show(live_status.render(status), tty)
        self.status_cost_s = time.monotonic() - now

    def status(self, trials) -> live_status.Status:
        """The live status of `trials` (all of the sweep's so far, as Tune passes them)."""
        views = [trial_view(t, self.metric, self.mode) for t in trials]
        self.most_running = max(self.most_running, sum(v.status == live_status.RUNNING for v in views))
        return live_status.summarize(views, metric=self.metric, mode=self.mode, total=self.total,
                                     planned_epochs=self.planned_epochs, at_once=self.most_running,
                                     elapsed_s=time.monotonic() - self.started)

    def _show(self, line: str, tty: bool) -> None:
        """A terminal's status line is redrawn in place; a log gets it as a line of its own."""
        if tty:
            columns = shutil.get_terminal_size().columns
            sys.stdout.write("\r" + live_status.fit(line, columns) + live_status.CLEAR_TO_EOL)
            sys.stdout.flush()
            self.on_screen = True
        else:
            print(f"status: {line}", flush=True)

    def _clear_status(self) -> None:
        if self.on_screen:
            sys.stdout.write("\r" + live_status.CLEAR_TO_EOL)
            sys.stdout.flush()
            self.on_screen = False

    def on_experiment_end(self, trials, **info):
        self._clear_status()

    def _line(self, trial, how: str, shown: str | None = None) -> None:
        """`[done/total elapsed] trial how: shown; best so far | its parameters`."""
        self.done += 1
        if live_status.CONSOLE.quiet:
            return
        config = space.decode(trial.config, self.params)
        params = " ".join(f"{p.name}={_short(config[p.name])}" for p in space.all_params(self.params)
                          if p.name in config)
        value = (trial.run_metadata.last_result or {}).get(self.metric)
        if shown is None:
            shown = f"{self.metric} {value:.4g}" if isinstance(value, (int, float)) else "no result"
        best = f"best {self.best[0]:.4g} ({self.best[1]})" if self.best else "no best yet"
        total = f"/{self.total}" if self.total else ""
        elapsed = time.monotonic() - self.started
        self._clear_status()
        print(f"[{self.done}{total} {elapsed:5.0f}s] {trial.trial_id} {how}: {shown}; {best} | {params}", flush=True)

    def on_trial_complete(self, iteration, trials, trial, **info):
        epochs = trial_view(trial, self.metric, self.mode).epochs
        how = f"finished {epochs} epochs" if epochs >= self.planned_epochs else f"stopped at epoch {epochs}"
        self._line(trial, how)

    def on_trial_error(self, iteration, trials, trial, **info):
        """One line with the error and where it was raised; the traceback is in the trial's
        error.txt and the experiment's log, not on the console (runner/logs.py)."""
        stalled = experiment.stalled_trials(self.experiment_dir).get(trial.trial_id) if self.experiment_dir else None
        if stalled and stalled["attempt"] == trial.num_failures:
            self._line(trial, "stopped", f"{stalled['reason']}; {FAILURE_HINTS['stalled']}")
            return
        path = Path(trial.error_file) if trial.error_file else None
        text = path.read_text(errors="replace") if path and path.is_file() else ""
        kind = failure_kind(text)
        detail = describe_failure(text) or "see its error.txt"
        hint = f"; {FAILURE_HINTS[kind]}" if kind in FAILURE_HINTS else ""
        self._line(trial, "failed" if kind == "errored" else f"failed ({kind})", detail + hint)
