"""Where a sweep's log records go: all of them to the experiment's log file, few to the console.

Ray logs a trial's full traceback to the console when it fails, and chatter on every start
(a local Ray started, progress bars off, result files written). A user acts on none of that
there: raysweep prints one line per failed trial (progress.py) and a summary at the end, and
the tracebacks stay in each trial's error.txt and in `EXPERIMENT_DIR/raysweep.log`, which gets
every record of Ray's and raysweep's own. The console keeps Ray's warnings and errors, less
the trial failures raysweep reports itself and the notices below that ask nothing of anyone.

The raylet's own warnings reach the driver apart from logging (Ray prints them as it gets
them); the one a sweep sets off as a matter of course, "N worker processes have been started
... 4x the maximum expected startup concurrency" (a TorchTrainer trial starts several actors,
and a 2-CPU node expects 2 at a time), goes to the log file with the rest: a Ray fix
(runner/ray_fixes, LOGGING) that is in place while the log is kept.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import ray.data

from raysweep.runner import ray_fixes

LOG_FILE = "raysweep.log"
# Ray's warnings that ask nothing of a raysweep user, matched on the start of the message (its
# INFO records never reach the console).
NOTICES = ("Token authentication is enabled", "Progress bars disabled")
# Tune's records of failed trials: raysweep reports each failure in one line and a summary.
TRIAL_FAILURES = ("Trial task failed", "Trials did not complete")


def _console_shows(record: logging.LogRecord) -> bool:
    message = record.getMessage()
    if record.levelno < logging.WARNING or message.startswith(NOTICES):
        return False
    return not (record.name.startswith("ray.tune") and message.startswith(TRIAL_FAILURES))


def _ray_consoles() -> list[logging.Handler]:
    """The handlers through which Ray's loggers write to the terminal ("ray", and "ray.data"'s own)."""
    ray.data.DataContext.get_current()   # Ray Data sets up its loggers on first use
    found = []
    for name in ("ray", "ray.data"):
        found += [h for h in logging.getLogger(name).handlers
                  if isinstance(h, logging.StreamHandler) and not isinstance(h, logging.FileHandler)]
    return found


@contextmanager
def quiet_console(quiet: bool = True) -> Iterator[None]:
    """`--quiet` (and the Python API's `quiet=True`), for the duration: raysweep's progress messages
    (INFO) leave the console, warnings and errors stay; the experiment's raysweep.log keeps every
    message. Nothing changes where `quiet` is false."""
    handlers = logging.getLogger().handlers if quiet else []
    levels = [h.level for h in handlers]
    for handler in handlers:
        handler.setLevel(max(handler.level, logging.WARNING))
    try:
        yield
    finally:
        for handler, level in zip(handlers, levels):
            handler.setLevel(level)


@contextmanager
def console_filtered() -> Iterator[None]:
    """For the duration: Ray's loggers show on the console only what `_console_shows` (the
    Python API starts Ray this way, in the caller's thread, before its sweep's log exists)."""
    consoles = _ray_consoles()
    for handler in consoles:
        handler.addFilter(_console_shows)
    try:
        yield
    finally:
        for handler in consoles:
            handler.removeFilter(_console_shows)


@contextmanager
def to_experiment_log(experiment_dir: Path) -> Iterator[Path]:
    """For the duration: every record of Ray's and raysweep's loggers in `experiment_dir/raysweep.log`,
    and only what `_console_shows` on the console."""
    ray_fixes.check_ray()   # a Ray that raysweep refuses gets the one line that says so, and no warnings first
    path = Path(experiment_dir) / LOG_FILE
    to_file = logging.FileHandler(path, encoding="utf-8")
    to_file.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    loggers = [logging.getLogger(name) for name in ("ray", "ray.data", "raysweep")]
    for logger in loggers:
        logger.addHandler(to_file)
    raysweep_level = loggers[-1].level
    loggers[-1].setLevel(logging.INFO)   # the file gets raysweep's INFO lines wherever the console's level is
    try:
        with console_filtered(), ray_fixes.installed(ray_fixes.LOGGING):
            yield path
    finally:
        for logger in loggers:
            logger.removeHandler(to_file)
        loggers[-1].setLevel(raysweep_level)
        to_file.close()
