"""The search space of a spec: tuned parameters, their roles, conditional branches, given points.

A parameter is a mapping under `params:`::

    learning_rate: {type: loguniform, low: 1.0e-4, high: 1.0e-2}          # a nuisance parameter
    architecture:                                                          # a scientific one
      type: choice
      values: [dcn, deep]
      role: scientific
      when:                       # sub-parameters that exist only on one branch
        dcn: {cross_layers: {type: randint, low: 1, high: 3}}

Roles follow the Deep Learning Tuning Playbook: *scientific* parameters are what a study
compares (`raysweep rank` reports the best trial for each of their values), *nuisance* ones are
tuned away for a fair comparison (the default), and *fixed* ones live under `fixed:`.

Choice values that are lists or mappings travel through the searchers as JSON strings, because
Optuna and HyperOpt accept only scalar categories; `decode` turns a trial's config back.
This module imports neither Ray nor torch.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Callable, Iterable

from raysweep.checks import did_you_mean, is_int, is_number, unknown_key

PARAM_TYPES = ("uniform", "loguniform", "randint", "choice", "grid")
PARAM_KEYS = ("type", "low", "high", "values", "role", "when")
ROLES = ("nuisance", "scientific")
# A conditional choice reaches HyperOpt as a nested choice stored under this key (see searchers).
BRANCH_SUFFIX = "__branch"

Bad = Callable[[str, str], None]  # bad(key_path, message)


@dataclass(frozen=True)
class Param:
    """One tuned hyperparameter. `randint` bounds are inclusive: randint 1..3 draws 1, 2 or 3.

    `when` pairs a choice value with the sub-parameters sampled only when that value is drawn.
    """

    name: str
    type: str
    low: float | None = None
    high: float | None = None
    values: tuple | None = None
    role: str = "nuisance"
    when: tuple[tuple[Any, tuple["Param", ...]], ...] = ()

    @property
    def is_choice(self) -> bool:
        return self.type in ("choice", "grid")

    @property
    def needs_json(self) -> bool:
        return self.is_choice and any(isinstance(v, (list, dict)) for v in self.values)

    def encode(self, value: Any) -> Any:
        return json.dumps(value) if self.needs_json else value

    def branch(self, value: Any) -> tuple["Param", ...]:
        """The sub-parameters that exist when this choice takes `value`."""
        return next((subs for v, subs in self.when if v == value), ())

    def contains(self, value: Any) -> bool:
        """Is `value` a point of this parameter's domain (choices by equality, ranges inclusive)?"""
        if self.is_choice:
            return value in self.values
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        if self.type == "randint" and value != int(value):
            return False
        return self.low - 1e-12 * abs(self.low) <= value <= self.high + 1e-12 * abs(self.high)


def all_params(params: Iterable[Param]) -> list[Param]:
    """Top-level parameters and every branch's sub-parameters, each name once."""
    out: dict[str, Param] = {}
    for p in params:
        out.setdefault(p.name, p)
        for _, subs in p.when:
            for sub in subs:
                out.setdefault(sub.name, sub)
    return list(out.values())


def inactive(p: Param, value: Any) -> set[str]:
    """Names of `p`'s sub-parameters that do not exist when `p` takes `value`."""
    every = {sub.name for _, subs in p.when for sub in subs}
    return every - {sub.name for sub in p.branch(value)}


def has_conditionals(params: Iterable[Param]) -> bool:
    return any(p.when for p in params)


def decode(config: dict, params: Iterable[Param]) -> dict:
    """A trial's config as plain values: JSON choices decoded, HyperOpt branches lifted.

    Sub-parameters of a branch that was not drawn are left out, so the workload's default
    applies to them.
    """
    values = dict(config)
    for key in [k for k in values if k.endswith(BRANCH_SUFFIX)]:
        nested = values.pop(key)
        values.update(nested if isinstance(nested, dict) else {})
    values = {k: v.item() if hasattr(v, "item") else v for k, v in values.items()}  # numpy scalars
    for p in all_params(params):
        if p.name in values and p.needs_json and isinstance(values[p.name], str):
            values[p.name] = json.loads(values[p.name])
    for p in params:
        if p.when and p.name in values:
            for name in inactive(p, values[p.name]):
                values.pop(name, None)
    return values


# --- parsing -----------------------------------------------------------------------------------

def _known_keys(mapping: dict, known: tuple, prefix: str, bad: Bad) -> None:
    for key in mapping:
        if key not in known:
            bad(f"{prefix}.{key}", unknown_key(key, known))


def parse_params(raw: Any, *, hints: dict, fixed: dict, bad: Bad, check_value,
                 prefix: str = "params", nested: bool = False) -> list[Param]:
    """Parse `params:` (or one branch of a `when`), reporting problems through `bad`.

    `check_value(name, value) -> str | None` says why a value does not fit the Config field.
    """
    if not isinstance(raw, dict):
        bad(prefix, "must be a mapping of hyperparameter name to {type: ..., ...}")
        return []
    out = []
    for name, p in raw.items():
        key = f"{prefix}.{name}"
        if hints and name not in hints:
            bad(key, f"not a hyperparameter of this workload.{did_you_mean(name, hints)} Known: {', '.join(hints)}.")
            continue
        if name in fixed:
            bad(key, f"is also set in fixed.{name}; a value is either fixed or tuned, remove one")
        if not isinstance(p, dict):
            bad(key, "must be a mapping such as {type: loguniform, low: 1.0e-4, high: 1.0e-2}")
            continue
        _known_keys(p, PARAM_KEYS, key, bad)
        param = _param(key, name, p, hints.get(name), bad, check_value)
        if param is None:
            continue
        role = p.get("role", "nuisance")
        if role not in ROLES:
            bad(f"{key}.role", f"unknown role {role!r}. Known: {', '.join(ROLES)} "
                "(fixed values go under fixed:).")
        elif nested and role != "nuisance":
            bad(f"{key}.role", "a branch's sub-parameter cannot be scientific: it does not exist on "
                "every branch, so trials could not be compared on it. Mark the choice above instead.")
        when = _when(key, param, p.get("when"), hints=hints, fixed=fixed, bad=bad,
                     check_value=check_value, nested=nested)
        out.append(Param(param.name, param.type, param.low, param.high, param.values, role=role, when=when))
    names = [p.name for p in out]
    for p in out:
        for _, subs in p.when:
            for sub in subs:
                if sub.name in names:
                    bad(f"{prefix}.{p.name}.when", f"{sub.name} is tuned at the top level too; "
                        "a parameter is either on every branch or on some")
    return out


def _param(key: str, name: str, p: dict, hint, bad: Bad, check_value) -> Param | None:
    kind = p.get("type")
    if kind not in PARAM_TYPES:
        bad(f"{key}.type", f"unknown type {kind!r}. Known: {', '.join(PARAM_TYPES)}.")
        return None
    if kind in ("choice", "grid"):
        values = p.get("values")
        if not isinstance(values, list) or not values:
            bad(f"{key}.values", f"{kind} needs a non-empty list, e.g. values: [8, 16]")
            return None
        for value in values:
            why = check_value(name, value)
            if why:
                bad(f"{key}.values", f"{value!r} is not {why}")
        return Param(name, kind, values=tuple(values))
    low, high = p.get("low"), p.get("high")
    numeric = is_int if kind == "randint" else is_number
    ok = True
    for bound, value in (("low", low), ("high", high)):
        if not numeric(value):
            bad(f"{key}.{bound}", f"{kind} needs {'an integer' if kind == 'randint' else 'a number'}, got {value!r}")
            ok = False
    if not ok:
        return None
    if kind == "randint" and low > high:
        bad(key, f"`low <= high` must hold, but got low={low}, high={high}. Swap them.")
    elif kind != "randint" and low >= high:
        bad(key, f"`low < high` must hold, but got low={low}, high={high}. Swap them.")
    if kind == "loguniform" and low <= 0:
        bad(key, f"`low > 0` must hold for loguniform, but got low={low}. "
            "Use a small positive bound such as 1.0e-6, or type: uniform.")
    if hint is int and kind != "randint":
        bad(f"{key}.type", f"{name} is an integer; use type: randint or choice, not {kind}")
    return Param(name, kind, low=low, high=high)


def _when(key: str, param: Param, when: Any, *, nested: bool, **parse) -> tuple:
    if when is None:
        return ()
    bad = parse["bad"]
    if nested:
        bad(f"{key}.when", "branches nest one level deep; move this choice to the top level")
        return ()
    if param.type != "choice":
        bad(f"{key}.when", f"only a `type: choice` parameter can have branches, not {param.type}")
        return ()
    if not isinstance(when, dict) or not when:
        bad(f"{key}.when", "must map a value of the choice to its sub-parameters, "
            "e.g. when: {dcn: {cross_layers: {type: randint, low: 1, high: 3}}}")
        return ()
    branches = []
    for value, subs in when.items():
        if value not in param.values:
            bad(f"{key}.when.{value}", f"{value!r} is not one of the values {list(param.values)}")
            continue
        branches.append((value, tuple(parse_params(subs or {}, prefix=f"{key}.when.{value}",
                                                   nested=True, **parse))))
    return tuple(branches)


def check_point(point: Any, params: list[Param], where: str, bad: Bad) -> None:
    """A warm-start point must name tuned parameters with values inside their domains."""
    if not isinstance(point, dict) or not point:
        bad(where, "must be a mapping of tuned parameter to value, e.g. {learning_rate: 1.0e-3}")
        return
    by_name = {p.name: p for p in all_params(params)}
    for name, value in point.items():
        p = by_name.get(name)
        if p is None:
            bad(f"{where}.{name}", f"not a tuned parameter; tuned: {', '.join(by_name) or 'none'}")
        elif not p.contains(value):
            domain = list(p.values) if p.is_choice else f"[{p.low}, {p.high}]"
            bad(f"{where}.{name}", f"{value!r} lies outside its search space {domain}")
    for p in params:
        for name in inactive(p, point.get(p.name)) & set(point):
            bad(f"{where}.{name}", f"exists only on another branch of {p.name}, "
                f"but the point has {p.name}={point.get(p.name)!r}")


def baseline(params: Iterable[Param], *, skip: Iterable[str] = ()) -> dict:
    """One concrete config for the tuned parameters: a choice's first value, a range's middle.

    The LR range test and the I/O search each need one model; the middle of the search space
    is the least arbitrary one. Values are encoded as a searcher would pass them.
    """
    skip, values = set(skip), {}
    for p in params:
        if p.name in skip:
            continue
        values[p.name] = p.encode(p.values[0]) if p.is_choice else geometric_middle(p)
        if p.is_choice:
            values.update(baseline(p.branch(p.values[0]), skip=skip))
    return values


def geometric_middle(p: Param) -> float:
    """The centre of a range on the scale it is searched on (for the baseline of a phase)."""
    if p.type == "loguniform":
        return math.sqrt(p.low * p.high)
    middle = (p.low + p.high) / 2
    return int(round(middle)) if p.type == "randint" else middle
