"""The one kind of error a user can fix: the command prints its lines and exits 2, no traceback.

A bad spec (`spec.SpecError`, every problem at once), missing or corrupt data
(`datasets.shards.DataError`) and a trial that cannot fit the cluster
(`runner.resources.SizingError`) are all `UserError`s; each message says what is wrong and how
to fix it.
"""

from __future__ import annotations

import re
from pathlib import Path


class UserError(ValueError):
    """A mistake in what the user gave: one message, or several found in one pass (`problems`).

    `lines` is what the command prints, one `error:` each.
    """

    def __init__(self, problems: str | list[str]):
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(self.problems))

    @property
    def lines(self) -> list[str]:
        return self.problems


# Frames of these packages are the machinery around a trial; the cause is in the frames after them.
_MACHINERY = ("site-packages", "dist-packages", "/raysweep/runner/", "/raysweep/training/loop.py")
_FRAME = re.compile(r'^\s*File "(?P<file>[^"]+)", line (?P<line>\d+), in (?P<function>\S+)')
# The line that names the exception: `KeyError: 'x'`, `ray.exceptions.OutOfMemoryError: ...`.
_EXCEPTION = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Interrupt|Exit|Warning)\b(\(\w+\))?(:|$)")
# Errors whose message names the user's code and the fix (training/returns.py): no frame to add.
_SELF_DESCRIBED = re.compile(r"^(?:[\w.]+\.)?(?P<name>WorkloadReturnError): (?P<message>.*)$")
# Tune writes one block per failed attempt into a trial's error.txt, each opening with this.
ATTEMPT = "Failure # "

# Kinds of failure that a trial's error tells apart, how to tell them, and what to do about them.
OUT_OF_MEMORY_SIGNS = ("OutOfMemoryError", "NODE_OUT_OF_MEMORY", "running low on memory", "CUDA out of memory")
FAILURE_HINTS = {
    "out of memory": "lower batch_size, or run fewer trials at once (resources.max_concurrent_trials)",
    "stalled": "see raysweep.log for what it waited on; raise failure.stall_timeout_s if its epochs are slow",
}


def last_attempt(error_text: str) -> str:
    """The last failed attempt of a trial's error.txt (a retried trial's file holds each one)."""
    return error_text[error_text.rfind(ATTEMPT):] if ATTEMPT in error_text else error_text


def failure_kind(error_text: str) -> str:
    """"out of memory", "diverged" or "errored", from the last attempt's error."""
    last = last_attempt(error_text)
    if any(sign in last for sign in OUT_OF_MEMORY_SIGNS):
        return "out of memory"
    return "diverged" if "DivergedError" in last else "errored"


def describe_failure(traceback_text: str) -> str:
    """A trial's traceback in one line: the line naming the exception and the deepest frame of
    the code that raised it, outside the machinery: `KeyError: 'labels' (compute_loss, brake.py:31)`.

    The exception's line is the last one shaped like `SomeError: ...`, so a message that runs on
    over more lines (Ray's advice after an out-of-memory kill) does not hide it. Trials that
    failed alike read alike, so a summary can group them.
    """
    lines = [line for line in last_attempt(traceback_text).strip().splitlines() if line.strip()]
    if not lines:
        return ""
    named = [line.strip() for line in lines if _EXCEPTION.match(line.strip())]
    last = (named[-1] if named else lines[-1].strip())[:300]
    described = _SELF_DESCRIBED.match(last)
    if described:   # it names the user's function itself, and was raised where the loop checked it
        return f"{described['name']}: {described['message']}"
    frames = [m for m in map(_FRAME.match, lines) if m]
    own = [m for m in frames if not any(part in m["file"] for part in _MACHINERY)] or frames
    if not own:
        return last
    where = own[-1]
    return f"{last} ({where['function']}, {Path(where['file']).name}:{where['line']})"
