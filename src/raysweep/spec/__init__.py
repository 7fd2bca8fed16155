"""The sweep spec: its typed schema, YAML loading with `--set` overrides, and validation.

    from raysweep import spec
    s = spec.load("search_spaces/glideator_asha_random.yaml", ["search.num_samples=4"])

`load` and `validate` report every problem at once in a `SpecError` (see problems.py).
"""

from raysweep.search.space import Param
from raysweep.spec.problems import Problems, SpecError
from raysweep.spec.schema import SNAPSHOT_FILE, Data, Failure, IOSearch, LRFind, Resources, Scheduler, Search, Spec, WarmStart
from raysweep.spec.validate import load, validate, write_copy

__all__ = ["SNAPSHOT_FILE", "Data", "Failure", "IOSearch", "LRFind", "Param", "Problems", "Resources", "Scheduler", "Search",
           "Spec", "SpecError", "WarmStart", "load", "validate", "write_copy"]
