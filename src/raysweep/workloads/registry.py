"""The workload registry: one module per built-in workload, registered here by an explicit import.

Adding a workload to raysweep is one module plus one line in `WORKLOADS` below: `raysweep data
NAME`, spec validation, the trial executors, the plots and export all find it here. A user's own
workload needs no line here: a spec names its module or file (references.py).
"""

from raysweep.workloads import families, glideator, tabular, trajectory
from raysweep.workloads.contract import Workload

WORKLOADS: dict[str, Workload] = {
    "glideator": glideator,
    "trajectory": trajectory,
    "tabular": tabular,
    "families": families,
}
