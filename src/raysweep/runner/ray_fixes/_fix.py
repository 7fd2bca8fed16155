"""What a fix is (the parts of Ray it replaces, the Rays it was verified on), and whether it fits the Ray at hand.

A fix is written against one Ray's code: a method that takes other parameters, or is gone, or a
Ray nobody ran the fix on, may no longer do what the fix assumes, and a replacement that does
not fit can do worse than the bug it mends. So a fix goes in only where the Ray is one it was
verified on and every part it replaces is there with the parameters it had then.
"""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass
from typing import Any, Callable, Literal

# Ray's own package, as raysweep requires it (pyproject.toml), for the advice to install it.
VERIFIED_RAY = "ray[default,data,train,tune]==2.60.0"


@dataclass(frozen=True)
class Patch:
    """One attribute of Ray's that a fix replaces: `owner` is "module" or "module:Class", `wrap`
    makes the replacement of the original, and `takes` is the original's parameters as they were
    on the Rays the fix was verified on (`parameters`)."""

    owner: str
    name: str
    wrap: Callable[[Any], Any]
    takes: str

    @property
    def where(self) -> str:
        module, _, cls = self.owner.partition(":")
        return f"{cls or module}.{self.name}"

    def resolve_owner(self) -> Any:
        module, _, cls = self.owner.partition(":")
        found = importlib.import_module(module)
        return getattr(found, cls) if cls else found


@dataclass(frozen=True)
class Fix:
    """A work-around, by the name warnings give it: the attributes it replaces, the Ray versions
    it was verified on, the upstream issue or code it works around, what a sweep suffers
    without it, and what to do on a Ray it does not fit: "skip" (the sweep is right without it,
    only slower or noisier) or "refuse" (without it a sweep can lose, repeat or hang on trials)."""

    name: str
    patches: tuple[Patch, ...]
    verified_on: tuple[str, ...]
    upstream: str
    without: str
    if_unfit: Literal["skip", "refuse"]


def parameters(function: Any) -> str:
    """A callable's parameters as `inspect.signature` gives them, less annotations: "(self, trial, exception=None)"."""
    signature = inspect.signature(function)
    bare = [p.replace(annotation=inspect.Parameter.empty) for p in signature.parameters.values()]
    return str(signature.replace(parameters=bare, return_annotation=inspect.Signature.empty))


def misfit(fix: Fix, ray_version: str) -> str | None:
    """Why `fix` does not fit this Ray (in a few words), or None where it does."""
    if ray_version not in fix.verified_on:
        return f"verified on Ray {', '.join(fix.verified_on)} only"
    for patch in fix.patches:
        try:
            original = getattr(patch.resolve_owner(), patch.name)
        except (ImportError, AttributeError):
            return f"{patch.where} is gone"
        try:
            takes = parameters(original)
        except (TypeError, ValueError):
            takes = "parameters inspect cannot read"
        if takes != patch.takes:
            return f"{patch.where} takes {takes}, the fix expects {patch.takes}"
    return None
