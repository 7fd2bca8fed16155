"""raysweep: Ray-distributed hyperparameter sweeps for PyTorch training pipelines.

    import raysweep
    results = raysweep.run("search_spaces/glideator_asha_random.yaml", overrides={"search.num_samples": 8})

`run`, `resume`, `load`, `load_spec` and `plan` are raysweep.api's, imported on first use: `import
raysweep` (and every command that starts no sweep) does not wait for Ray, torch or pandas.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_API = ("run", "resume", "load", "load_spec", "plan", "Results", "Sweep", "SpecError", "UserError")


def __getattr__(name: str):
    if name in _API:
        return getattr(importlib.import_module("raysweep.api"), name)
    raise AttributeError(f"module 'raysweep' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_API])


__all__ = [*_API, "__version__"]
