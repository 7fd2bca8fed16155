"""One line per finished trial instead of Tune's result boxes: what ended, why, and the best so far."""

from __future__ import annotations

import math
import time
from pathlib import Path

from ray.tune import Callback

from raysweep import experiment
from raysweep.errors import FAILURE_HINTS, describe_failure, failure_kind
from raysweep.search import space


def _short(value) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


class ProgressLines(Callback):
    """Prints `[done/total] trial: ended how, metric; best so far` as trials end."""

    def __init__(self, *, metric: str, mode: str, params: tuple, total: int | None,
                 planned_epochs: int, experiment_dir: str | None = None):
        self.metric, self.mode, self.params = metric, mode, params
        self.experiment_dir = experiment_dir   # where the stall watchdog says why it stopped a trial
        # No callables stored here: Tune pickles its callbacks with the experiment state.
        self.total, self.planned_epochs = total, planned_epochs
        self.done = 0
        self.best: tuple[float, str] | None = None
        self.last: dict[str, dict] = {}
        self.started = time.monotonic()

    def on_trial_result(self, iteration, trials, trial, result, **info):
        self.last[trial.trial_id] = result
        value = result.get(self.metric)
        if isinstance(value, (int, float)) and not math.isnan(value):
            better = self.best is None or (value < self.best[0] if self.mode == "min" else value > self.best[0])
            if better:
                self.best = (value, trial.trial_id)

    def _line(self, trial, how: str, shown: str | None = None) -> None:
        self.done += 1
        result = self.last.pop(trial.trial_id, {})   # an ended trial's last result is kept no longer
        config = space.decode(trial.config, self.params)
        params = " ".join(f"{p.name}={_short(config[p.name])}" for p in space.all_params(self.params)
                          if p.name in config)
        value = result.get(self.metric)
        if shown is None:
            shown = f"{self.metric} {value:.4g}" if isinstance(value, (int, float)) else "no result"
        best = f"best {self.best[0]:.4g} ({self.best[1]})" if self.best else "no best yet"
        total = f"/{self.total}" if self.total else ""
        elapsed = time.monotonic() - self.started
        print(f"[{self.done}{total} {elapsed:5.0f}s] {trial.trial_id} {how}: {shown}; {best} | {params}", flush=True)

    def on_trial_complete(self, iteration, trials, trial, **info):
        epochs = self.last.get(trial.trial_id, {}).get("epoch", 0)   # before _line lets it go
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
