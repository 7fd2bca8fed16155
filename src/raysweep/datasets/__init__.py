"""Dataset generators for the seed workloads, shard writers and readers.

`GENERATORS` maps `raysweep data NAME` to a generator's `write` function.
"""

from raysweep.datasets import glideator

GENERATORS = {
    "glideator": glideator.write,
}
