"""Small checks shared across modules: integer or number (bools are neither), did-you-mean, missing;
and a byte count as people read it."""

from __future__ import annotations

import difflib
from typing import Iterable


def is_int(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def is_number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def did_you_mean(name, known: Iterable[str]) -> str:
    """' Did you mean 'x'?' for the closest known name, or '' when none is close."""
    match = difflib.get_close_matches(str(name), [str(k) for k in known], n=1, cutoff=0.6)
    return f" Did you mean {match[0]!r}?" if match else ""


def unknown_key(key, known: Iterable[str]) -> str:
    """The message for a key that is not among `known`: did-you-mean, then the known keys."""
    known = [str(k) for k in known]
    return f"unknown key.{did_you_mean(key, known)} Known keys: {', '.join(known)}."


def is_missing(value) -> bool:
    """None or NaN: what a table cell holds where a trial has no value (a branch's parameter)."""
    return value is None or (isinstance(value, float) and value != value)


def duration_text(seconds: float) -> str:
    """A time as people read it: 45s, 4m05s, 2h07m."""
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def size_text(n: float) -> str:
    """A byte count as people read it: 512 B, 27.1 MB (binary units)."""
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return ""
