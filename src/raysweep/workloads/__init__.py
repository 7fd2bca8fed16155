"""The workload registry: one module per workload, registered here by an explicit import.

A workload module provides `Config` (a frozen dataclass extending `TrainingConfig`, whose
defaults run), `build_model`,
`compute_loss`, `predict`, `compute_metrics`, `METRICS` (name -> "min"/"max") and
`DATA_COMMAND` (how to make its data), and optionally `CHOICES` (the values a string
hyperparameter takes, checked by `validate`). Adding a workload = one module + one line below.
"""

from raysweep.workloads import glideator, trajectory

WORKLOADS = {
    "glideator": glideator,
    "trajectory": trajectory,
}

__all__ = ["WORKLOADS"]
