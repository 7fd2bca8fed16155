"""Datasets: shard writers and readers, the seed workloads' generators, batching, Ray Data.

A generator writes `train/` and `val/` shards plus `meta.json`; each workload names its own in
`DATA` (`raysweep.workloads`), which is how `raysweep data NAME` finds it.
"""
