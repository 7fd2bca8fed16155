"""Collect every problem of a spec in one pass, each with its place and its fix.

In the manner of Optuna's messages::

    search_spaces/x.yaml: params.learning_rate: `low > 0` must hold for loguniform, but got low=0.0.

A value a `--set KEY=VALUE` override gave is blamed on the command line, not on the file the
user would search in vain::

    --set fixed.epochs=abc: fixed.epochs: expected int, got 'abc'
    --set scheduler={type: asha, grace_period: 0}: scheduler.grace_period: must be an integer >= 1, got 0
    search_spaces/x.yaml (with --set params.learning_rate.low=-1): params.learning_rate: `low > 0` must hold ...
    search_spaces/x.yaml (with --set fixed.epochs=1): scheduler.max_t: 10 is more than fixed.epochs 1: lowered to 1

The first two name a key the override set, or one inside the value it set; the others, a key of
the file that holds an overridden one, or whose check read one (`because_of`). Every line keeps
the `PLACE: KEY: message` shape, so the key is there to search for either way.

The section checks (`validate.py`, `sections.py`, `phase_sections.py`) are plain functions
that add to one `Problems`; `validate` raises a `SpecError` holding them all.
"""

from __future__ import annotations

import types
import typing
from dataclasses import dataclass, field

from raysweep.checks import is_int, is_number, unknown_key
from raysweep.errors import UserError


class SpecError(UserError):
    """A spec has problems; `problems` holds one line each, all found in one pass."""


@dataclass
class Problems:
    """The problems found so far in the spec read from `source`."""

    source: str
    lines: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)         # warnings: the spec runs, but see this
    undefined: dict[str, str] = field(default_factory=dict)  # metric -> why the data leaves it NaN
    set_by: dict[str, str] = field(default_factory=dict)     # key path -> the `--set` item that gave it

    def bad(self, key: str, message: str, *, because_of: tuple[str, ...] = ()) -> None:
        """A problem at `key`; `because_of`: other keys its check read (a bound, a default's source)."""
        self.lines.append(self.where(key, because_of) + message)

    def warn(self, key: str, message: str, *, because_of: tuple[str, ...] = ()) -> None:
        self.notes.append(self.where(key, because_of) + message)

    def where(self, key: str, because_of: tuple[str, ...] = ()) -> str:
        """The place a line names: the `--set` item that gave `key` (or a mapping above it), else
        the file, with the overrides the check read or that changed part of `key`."""
        giver = next((item for set_key, item in self.set_by.items() if _under(key, set_key)), None)
        if giver is not None:
            return f"--set {giver}: {key}: "
        read = [item for set_key, item in self.set_by.items()
                if _under(set_key, key) or any(_under(k, set_key) for k in because_of)]
        with_set = f" (with {', '.join(f'--set {item}' for item in read)})" if read else ""
        return f"{self.source}{with_set}: {key}: "

    def known_keys(self, mapping: dict, known: tuple, prefix: str) -> None:
        for key in mapping:
            if key not in known:
                where = f"{prefix}.{key}" if prefix else str(key)
                self.bad(where, unknown_key(key, known))

    def section(self, raw: dict, name: str, known: tuple | None = None) -> dict:
        """`raw[name]` as a mapping (empty where absent), its unknown keys reported."""
        value = raw.get(name) or {}
        if not isinstance(value, dict):
            self.bad(name, f"must be a mapping, got {type(value).__name__}")
            return {}
        self.known_keys(value, known or tuple(value), name)
        return value

    def number(self, section: dict, prefix: str, key: str, default, *, low: float, integer: bool = False,
               strict: bool = False, optional: bool = False):
        """A numeric setting >= low (> low when strict), or None where optional."""
        value = section.get(key, default)
        if optional and value is None:
            return None
        ok = (is_int if integer else is_number)(value) and (value > low if strict else value >= low)
        if not ok:
            kind = "an integer" if integer else "a number"
            self.bad(f"{prefix}.{key}", f"must be {kind} {'>' if strict else '>='} {low:g}"
                     f"{' or null' if optional else ''}, got {value!r}")
        return value


def _under(key: str, prefix: str) -> bool:
    """Is `key` the key path `prefix` or inside it (`scheduler.max_t`, `search.points_to_evaluate[0]`)?"""
    return key == prefix or key.startswith((prefix + ".", prefix + "["))


def check_type(value, hint) -> bool:
    """Does a YAML value fit a Config field's type hint (int, float, bool, str, tuple[int, ...])?"""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(check_type(value, h) for h in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if origin in (tuple, list):
        args = typing.get_args(hint)
        return isinstance(value, (list, tuple)) and all(check_type(x, args[0]) for x in value)
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return is_int(value)
    if hint is float:
        return is_number(value)
    if hint is str:
        return isinstance(value, str)
    return True


def type_name(hint) -> str:
    return getattr(hint, "__name__", None) if typing.get_origin(hint) is None else str(hint)
