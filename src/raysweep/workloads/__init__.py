"""Workloads: the contract a workload module satisfies, the built-in ones, and loading a user's own.

A spec's `workload:` is a registered name (`registry.WORKLOADS`), a module path
(`my_project.models.brake`) or a Python file (`./brake_coast.py`); `load_workload` turns any of
them into the module, checked against `contract.Workload`.

What a workload of one's own needs comes from here in one import: `TrainingConfig` (its
Config's base), `DataCommand` and `Option` (its `raysweep data` command), `write_dataset`
(shards plus meta.json) and `DataError` (a mistake in the data or its options, reported in one
line with exit code 2).
"""

from raysweep.datasets.shards import DataError, write_dataset
from raysweep.training.config import TrainingConfig
from raysweep.workloads.configs import choices, config_from_trial, field_types
from raysweep.workloads.contract import DataCommand, Option, Workload, task_of
from raysweep.workloads.references import WorkloadError, check_reference, load_workload
from raysweep.workloads.registry import WORKLOADS

__all__ = ["WORKLOADS", "DataCommand", "DataError", "Option", "TrainingConfig", "Workload", "WorkloadError",
           "check_reference", "choices", "config_from_trial", "field_types", "load_workload", "task_of",
           "write_dataset"]
