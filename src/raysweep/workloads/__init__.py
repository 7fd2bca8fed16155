"""The workload registry: one module per workload, registered here by an explicit import.

A workload module satisfies `contract.Workload` (see `contract.py` for every name it provides).
Adding a workload is one module plus one line in `WORKLOADS` below: `raysweep data NAME`, spec
validation, the trial executors, the plots and export all find it here.
"""

from raysweep.workloads import glideator, tabular, trajectory
from raysweep.workloads.configs import choices, config_from_trial, field_types
from raysweep.workloads.contract import DataCommand, Option, Workload, task_of

WORKLOADS: dict[str, Workload] = {
    "glideator": glideator,
    "trajectory": trajectory,
    "tabular": tabular,
}

__all__ = ["WORKLOADS", "DataCommand", "Option", "Workload", "choices", "config_from_trial",
           "field_types", "task_of"]
