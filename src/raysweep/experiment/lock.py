"""One process runs an experiment at a time: `run` and `resume` hold its lock while they write into it.

Two drivers writing one experiment's Tune state, journal and store would each undo the other's
work. The lock is an flock on `EXPERIMENT_DIR/.raysweep.lock`, which the operating system
releases when the holder ends, however it ends (SIGKILL included), so a crashed driver never
leaves the experiment locked. It guards one machine's processes (and a shared filesystem's,
where it supports flock); a working copy of a bucket is locked on this machine only.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import time
from pathlib import Path
from typing import Iterator

from raysweep.errors import UserError
from raysweep.experiment.names import LOCK_FILE


@contextlib.contextmanager
def held(experiment_dir: Path, command: str) -> Iterator[None]:
    """This process runs the experiment: another `run` or `resume` of it is refused meanwhile.

    The lock file names the holder (command, pid, host, since when) for the refusal to quote.

    Raises:
        UserError: another live process holds the experiment, named with its pid and host.
    """
    try:
        handle = open(Path(experiment_dir) / LOCK_FILE, "a+")
    except OSError as exc:
        raise UserError(f"{experiment_dir}: cannot take its lock ({type(exc).__name__}: {exc.strerror or exc}); "
                        "a run or resume writes into the experiment, so it must be writable") from None
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise UserError(f"{experiment_dir} is being run by {holder}; wait for it to end, or stop it "
                        "(Ctrl-C), then try again") from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"raysweep {command} (pid {os.getpid()} on {socket.gethostname()}, "
                 f"since {time.strftime('%Y-%m-%d %H:%M:%S')})\n")
    handle.flush()
    try:
        yield
    finally:
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()
