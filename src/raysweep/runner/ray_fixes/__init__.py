"""Work-arounds for Ray bugs that would take a sweep down or lose its state, and the one way they go in.

Each fix in the table (_table.py) names the Ray versions it was verified on and the upstream
issue or code it works around; why each exists, and the test that shows it, is in _wrappers.py.
`installed()` puts them in for as long as Tune runs (a sweep's fit, a resume's restore and
fit) and gives Ray its own back after: a notebook that runs two sweeps, or goes on with Ray
after one, has Ray as Ray made it in between.

On a Ray a fix does not fit (a version it was not verified on, or a part it replaces gone or
taking other parameters), it says so in one line: a fix the sweep is right without (only
slower or noisier) is left out with a warning, and one without which a sweep can lose, repeat
or hang on trials stops the command (`UserError`), which names a Ray to install instead.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import logging
import threading
from typing import Any, Iterable, Iterator

import ray

from raysweep.errors import UserError
from raysweep.runner.ray_fixes._fix import VERIFIED_RAY, Fix, Patch, misfit, parameters
from raysweep.runner.ray_fixes._table import AT_SHUTDOWN, BY_NAME, FIXES, FOR_A_SWEEP, LOGGING, READING_RESULTS
from raysweep.runner.ray_fixes._wrappers import RAYLET_NOTICES, KilledForMemory

log = logging.getLogger("raysweep")
_lock = threading.RLock()
# The fixes in place now, by name: each patched attribute's owner, name, and what the owner itself held before
# (_ABSENT where the attribute was inherited, and so is deleted again).
_in_place: dict[str, list[tuple[Any, str, Any]]] = {}
_ABSENT = object()


@contextlib.contextmanager
def installed(names: Iterable[str] = FOR_A_SWEEP) -> Iterator[None]:
    """For the duration: the fixes of `names` that fit this Ray, and Ray's own parts again after.

    A fix in place already (an `installed()` around this one) is left as it is, and so it is
    at this one's end. A fix that does not fit is left out with one warning line, or, where a
    sweep is not safe without it, raises `UserError` before anything is replaced."""
    with _lock:
        mine = [name for name in dict.fromkeys(names) if name not in _in_place]
        fitting = _fitting([BY_NAME[name] for name in mine], warn=True)
        mine = [fix.name for fix in fitting]
        try:
            for fix in fitting:
                replaced = _in_place[fix.name] = []   # kept as it grows: a part that fails to go in leaves none in
                for patch in fix.patches:
                    replaced.append(_replace(patch))
        except BaseException:
            _put_back(mine)
            raise
    try:
        yield
    finally:
        with _lock:
            _put_back(mine)


def check_ray() -> None:
    """Raise the `UserError` that `installed()` would, before Ray starts (seconds) and a sweep is set up."""
    _fitting(list(FIXES), warn=False)


def shutdown_ray() -> None:
    """`ray.shutdown()`, without the second it waits on the autoscaler's monitor (`AT_SHUTDOWN`)."""
    with installed(AT_SHUTDOWN):
        ray.shutdown()


def _fitting(fixes: list[Fix], *, warn: bool) -> list[Fix]:
    """The `fixes` that fit this Ray; the others are warned of (if `warn`) or refused."""
    version = ray.__version__
    unfit = {fix.name: why for fix in fixes if (why := misfit(fix, version))}
    refused: dict[str, list[Fix]] = {}
    for fix in fixes:
        if fix.name in unfit and fix.if_unfit == "refuse":
            refused.setdefault(unfit[fix.name], []).append(fix)
    if refused:
        raise UserError([_refusal(version, why, fixes) for why, fixes in refused.items()])
    for fix in fixes:
        if fix.name in unfit and warn:
            log.warning("Ray %s: not applying the fix '%s' (%s); without it %s", version, fix.name, unfit[fix.name],
                        fix.without)
    return [fix for fix in fixes if fix.name not in unfit]


def _refusal(version: str, why: str, fixes: list[Fix]) -> str:
    """One line for the fixes refused for one reason (a version: all of them at once)."""
    if len(fixes) == 1:
        which, without = f"its fix '{fixes[0].name}'", f"without it {fixes[0].without}"
    else:
        which = "its fixes " + ", ".join(f"'{fix.name}'" for fix in fixes)
        without = "without them a sweep can lose, repeat or wait forever on trials"
    return f"Ray {version}: raysweep cannot run without {which} ({why}; {without}); install a verified Ray: " \
           f"pip install '{VERIFIED_RAY}'"


def _replace(patch: Patch) -> tuple[Any, str, Any]:
    owner = patch.resolve_owner()
    held = vars(owner).get(patch.name, _ABSENT)
    original = getattr(owner, patch.name)
    replacement = patch.wrap(original)
    if inspect.isfunction(replacement) and inspect.isfunction(original):
        functools.update_wrapper(replacement, original)
    setattr(owner, patch.name, replacement)
    return owner, patch.name, held


def _put_back(names: list[str]) -> None:
    for name in reversed(names):
        for owner, attribute, held in reversed(_in_place.pop(name, [])):
            if held is _ABSENT:
                delattr(owner, attribute)
            else:
                setattr(owner, attribute, held)


__all__ = ["AT_SHUTDOWN", "BY_NAME", "FIXES", "FOR_A_SWEEP", "LOGGING", "RAYLET_NOTICES", "READING_RESULTS", "VERIFIED_RAY",
           "Fix", "KilledForMemory", "Patch", "check_ray", "installed", "parameters", "shutdown_ray"]
