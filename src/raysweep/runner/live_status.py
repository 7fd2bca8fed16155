"""The live status of a sweep while its trials run: what is running, the best so far, how much is
done of what is planned, and when it should end.

On a terminal it is one line rewritten in place (`\\r`, then the line, then clear-to-end-of-line),
at most TTY_EVERY_S apart; anywhere else (a pipe, a log file, `ray job logs`) a plain line every
PIPE_EVERY_S seconds, which RAYSWEEP_PROGRESS_EVERY_S overrides. progress.py prints it from Tune's
step hook; this module holds the pure parts (the figures and their wording) and the console
setting.

The ETA is what the measured epochs say: the mean seconds of an epoch so far, times the epochs
still planned, over the trials that run at once. The epochs planned shrink as a scheduler stops
trials early (an ended trial counts the epochs it ran), so early on the ETA is an upper bound.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

from raysweep.checks import duration_text

TTY_EVERY_S = 0.5      # a terminal's line is redrawn at most twice a second
PIPE_EVERY_S = 30.0    # a log gets a status line this often
EVERY_S_ENV = "RAYSWEEP_PROGRESS_EVERY_S"
SHOWN_RUNNING = 4      # running trials named on the line; the rest are counted
ENDED = ("TERMINATED", "ERROR")   # Tune's statuses of a trial that has ended
RUNNING, PENDING = "RUNNING", "PENDING"
CLEAR_TO_EOL = "\x1b[K"


@dataclass
class Console:
    """What the console shows of a running sweep. A module-level setting, not the callback's:
    a resumed sweep's callbacks are the first run's, unpickled from Tune's tuner.pkl, so the
    driver that resumes says here whether it is quiet."""

    quiet: bool = False   # neither the live status nor the per-trial lines


CONSOLE = Console()


def configure(*, quiet: bool) -> None:
    """Set what this process's sweeps print (the sweep phase calls it before the trials start)."""
    CONSOLE.quiet = quiet


def pipe_every_s() -> float:
    """Seconds between status lines where the output is no terminal."""
    try:
        every = float(os.environ.get(EVERY_S_ENV, PIPE_EVERY_S))
    except ValueError:
        return PIPE_EVERY_S
    return every if every > 0 else PIPE_EVERY_S


@dataclass(frozen=True)
class TrialView:
    """What the status needs of one Tune trial."""

    trial_id: str
    status: str            # Tune's: PENDING, RUNNING, PAUSED, TERMINATED, ERROR
    epochs: int            # epochs it has reported
    seconds: float         # its measured training time over those epochs (Tune's time_total_s)
    last: float | None     # its last value of the metric
    best: float | None     # its best value of the metric


@dataclass(frozen=True)
class Status:
    """The figures of one status line."""

    metric: str
    running: tuple[TrialView, ...]
    pending: int                        # trials created and not yet started (starting, or waiting for resources)
    best: tuple[float, str] | None     # value, trial id
    trials_done: int
    trials_planned: int | None
    epochs_done: int
    epochs_planned: int | None          # the ended trials' epochs plus planned_epochs for every other
    planned_epochs: int                 # of one trial
    epoch_s: float | None               # mean measured seconds of one trial's epoch
    at_once: int                        # trials that run at once (the most seen running), at least 1
    elapsed_s: float


def best_of(trials: list[TrialView], mode: str) -> tuple[float, str] | None:
    """The best value of the metric any of `trials` reported, and that trial's id."""
    best = None
    for t in trials:
        if t.best is not None and (best is None or (t.best < best[0] if mode == "min" else t.best > best[0])):
            best = (t.best, t.trial_id)
    return best


def summarize(trials: list[TrialView], *, metric: str, mode: str, total: int | None, planned_epochs: int,
              at_once: int, elapsed_s: float) -> Status:
    """The status of a sweep whose trials so far are `trials`, out of `total` planned."""
    ended = [t for t in trials if t.status in ENDED]
    running = tuple(t for t in trials if t.status == RUNNING)
    epochs_done = sum(t.epochs for t in trials)
    seconds = sum(t.seconds for t in trials if t.epochs)
    planned = None
    if total:
        planned = sum(t.epochs for t in ended) + max(0, total - len(ended)) * planned_epochs
    return Status(metric=metric, running=running, pending=sum(t.status == PENDING for t in trials),
                  best=best_of(trials, mode),
                  trials_done=len(ended), trials_planned=total,
                  epochs_done=epochs_done, epochs_planned=planned, planned_epochs=planned_epochs,
                  epoch_s=seconds / epochs_done if epochs_done else None, at_once=max(1, at_once),
                  elapsed_s=elapsed_s)


def eta_s(status: Status) -> float | None:
    """Seconds until the planned epochs are done at the measured pace; None before an epoch is measured."""
    if status.epoch_s is None or status.epochs_planned is None:
        return None
    remaining = max(0, status.epochs_planned - status.epochs_done)
    trials_left = max(1, (status.trials_planned or 0) - status.trials_done)
    return remaining * status.epoch_s / min(status.at_once, trials_left)


def _number(value: float | None) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:.4g}"


def render(status: Status) -> str:
    """The status as one line: counts and ETA first (what a narrow terminal keeps), then the best, then
    the running trials."""
    of = lambda planned: f"/{planned}" if planned is not None else ""   # noqa: E731
    eta = eta_s(status)
    head = (f"{status.trials_done}{of(status.trials_planned)} trials, "
            f"{status.epochs_done}{of(status.epochs_planned)} epochs, {duration_text(status.elapsed_s)} elapsed, "
            + (f"ETA {duration_text(eta)}" if eta is not None else "ETA after the first epoch"))
    best = (f"best {status.metric} {_number(status.best[0])} ({status.best[1]})" if status.best
            else f"no {status.metric} yet")
    shown = [f"{t.trial_id} epoch {t.epochs}/{status.planned_epochs} {_number(t.last)}" if t.epochs
             else f"{t.trial_id} starting" for t in status.running[:SHOWN_RUNNING]]
    more = len(status.running) - len(shown)
    running = ("running " + ", ".join(shown) + (f" and {more} more" if more else "")) if shown else "none running"
    pending = f"; {status.pending} waiting to start" if status.pending else ""
    return f"{head}; {best}; {running}{pending}"


def finished(status: Status) -> bool:
    """Every planned trial has ended: nothing is left for a status to say."""
    return status.trials_planned is not None and status.trials_done >= status.trials_planned


def fit(line: str, columns: int) -> str:
    """The line cut to a terminal's width (a wrapped line could not be redrawn in place)."""
    width = max(10, columns - 1)
    return line if len(line) <= width else line[:width - 3] + "..."
