"""The workload registry: one module per workload, registered here by an explicit import.

A workload module provides `Config` (a frozen dataclass extending `TrainingConfig`, whose
defaults run), `build_model`, `compute_loss`, `predict`, `compute_metrics(outputs, labels,
meta)`, `model_inputs(meta)` (the batch columns an exported model takes), `METRICS`
(name -> "min"/"max") and `DATA_COMMAND` (how to make its data). Optionally
`CHOICES` (the values a string hyperparameter takes) and `spec_problems(meta, fixed, params,
metric)` (what a spec asks that its dataset cannot do), both checked by `validate`.
Adding a workload = one module + one line below.
"""

from raysweep.workloads import glideator, tabular, trajectory

WORKLOADS = {
    "glideator": glideator,
    "trajectory": trajectory,
    "tabular": tabular,
}

__all__ = ["WORKLOADS"]
