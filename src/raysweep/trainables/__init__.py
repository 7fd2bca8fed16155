"""Workload kinds: how a trial of a workload trains, resumes, is exported and scored.

`kind_of(module)` decides a workload module's kind once, from what it defines (or its `KIND`);
every step that differs by kind then calls the kind (`contract.Kind`), and nothing else in
raysweep asks which kind it is. Ray Tune calls what a trial runs a trainable: these are
raysweep's.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from raysweep.trainables import model_families, own_loop, pytorch_loop
from raysweep.trainables.contract import PHASES, Kind
from raysweep.trainables.own_loop import OwnSession
from raysweep.trainables.session import Session, TrialData

KINDS: dict[str, Kind] = {kind.name: kind for kind in (pytorch_loop.KIND, model_families.KIND, own_loop.KIND)}
_DECIDED: dict[int, tuple[Any, Kind]] = {}   # id(module) -> (module, its kind): decided once per process


def _decide(module: ModuleType | Any) -> Kind:
    declared = getattr(module, "KIND", None)
    if isinstance(declared, str) and declared in KINDS:
        return KINDS[declared]
    if callable(getattr(module, "train", None)):
        return own_loop.KIND
    if callable(getattr(module, "fit_trial", None)):
        return model_families.KIND
    return pytorch_loop.KIND


def kind_of(module: ModuleType | Any) -> Kind:
    """The module's kind, decided the first time it is asked (workloads.load_workload asks as it
    loads the module): its `KIND` where it names one; else an own loop where it defines `train`,
    model families where it defines `fit_trial`, and raysweep's loop otherwise."""
    found = _DECIDED.get(id(module))
    if found is None or found[0] is not module:
        found = _DECIDED[id(module)] = (module, _decide(module))
    return found[1]


def kind_problems(module: ModuleType | Any, shown: str) -> list[str]:
    """The module's contract for its kind, one line each (a `KIND` that names no kind, or a
    module that reads as two kinds, first)."""
    declared = getattr(module, "KIND", None)
    if declared is not None and not (isinstance(declared, str) and declared in KINDS):
        return [f"{shown}: KIND must be one of {', '.join(KINDS)}, got {declared!r}"]
    loop_functions = all(callable(getattr(module, name, None)) for name in ("build_model", "compute_loss"))
    if declared is None and callable(getattr(module, "train", None)) and loop_functions:
        return [f"{shown}: it defines train (a loop of its own) and build_model with compute_loss (raysweep's loop); "
                "say which with KIND = 'own_loop' or KIND = 'loop'"]
    return kind_of(module).problems(module, shown)


__all__ = ["KINDS", "PHASES", "Kind", "OwnSession", "Session", "TrialData", "kind_of", "kind_problems"]
