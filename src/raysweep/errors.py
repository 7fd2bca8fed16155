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


def describe_failure(traceback_text: str) -> str:
    """A trial's traceback in one line: the exception's last line and the deepest frame of the
    code that raised it, outside the machinery: `KeyError: 'labels' (compute_loss, brake.py:31)`.

    Trials that failed alike read alike, so a summary can group them.
    """
    lines = [line for line in traceback_text.strip().splitlines() if line.strip()]
    if not lines:
        return ""
    last = lines[-1].strip()[:300]
    frames = [m for m in map(_FRAME.match, lines) if m]
    own = [m for m in frames if not any(part in m["file"] for part in _MACHINERY)] or frames
    if not own:
        return last
    where = own[-1]
    return f"{last} ({where['function']}, {Path(where['file']).name}:{where['line']})"
