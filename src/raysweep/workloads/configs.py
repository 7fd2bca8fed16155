"""From a trial's sampled values to the workload's typed `Config`, in one call.

Every place that turns a trial into a Config (the trial executors, lr-find, io-search, the
champion's model) calls `config_from_trial`, so branches, JSON choices and YAML's lists and
ints are handled alike everywhere.
"""

from __future__ import annotations

import typing
from typing import Iterable

from raysweep.checks import is_int
from raysweep.search import space
from raysweep.training import config as training_config
from raysweep.training import losses
from raysweep.workloads.contract import Workload


def config_from_trial(workload: Workload, values: dict, params: Iterable[space.Param] = ()):
    """The workload's Config from a trial's config (fixed plus sampled values).

    `params` are the spec's tuned parameters: JSON-encoded choices are decoded and a branch's
    sub-parameters that were not drawn are left out (the Config's default applies). Values
    that are no Config field (Tune's own keys) are ignored; YAML lists become tuples, and a
    float column holding whole numbers becomes int where the field is an int.
    """
    values = space.decode(values, params)
    hints = field_types(workload)
    kwargs = {}
    for key, value in values.items():
        if key not in hints:
            continue
        if typing.get_origin(hints[key]) is tuple:
            value = tuple(value)
        elif hints[key] is float and is_int(value):
            value = float(value)
        elif hints[key] is int and isinstance(value, float) and value.is_integer():
            value = int(value)   # a table column holding ints and NaN (a branch's parameter) is float
        kwargs[key] = value
    return workload.Config(**kwargs)


def field_types(workload: Workload) -> dict[str, object]:
    """Each Config field's type hint: what a spec's `fixed` and `params` values must fit."""
    return typing.get_type_hints(workload.Config)


def choices(workload: Workload) -> dict[str, tuple]:
    """The values each string hyperparameter of a workload may take.

    The shared training fields first (schedule, precision, the metrics early stopping may
    watch, the registry's losses), then the workload's own `CHOICES`, which may narrow them.
    """
    found = {**training_config.CHOICES, "early_stopping_metric": tuple(workload.METRICS)}
    if issubclass(workload.Config, training_config.LossChoice):
        found["loss"] = tuple(losses.LOSSES)
    return {**found, **getattr(workload, "CHOICES", {})}
