"""Dataset generators for the seed workloads, shard writers and readers.

`GENERATORS` maps `raysweep data NAME` to a generator's `write` function; the CLI passes each
of its options by the keyword of the same name.
"""

from raysweep.datasets import glideator, trajectory

GENERATORS = {
    "glideator": glideator.write,
    "trajectory": trajectory.write,
}
