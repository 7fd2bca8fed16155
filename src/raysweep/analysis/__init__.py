"""Results -> tables, rankings, plots and reports. Imports Ray's result readers, never starts Ray.

    from raysweep import analysis
    results = analysis.load("results/glideator_asha_random-20261123-141934")
    results.trials      # one row per trial: parameters, status, best/last metrics, wall time
    results.curves      # one row per report: trial, step, epoch, every metric
"""

from raysweep.analysis.store import Results, load

__all__ = ["Results", "load"]
