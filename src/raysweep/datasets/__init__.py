"""Dataset generators for the seed workloads, shard writers and readers.

`GENERATORS` maps `raysweep data NAME` to the function that writes the dataset (a generator's
`write`, or the table importer); the CLI passes each option by the keyword of the same name.
"""

from raysweep.datasets import glideator, tabular, trajectory

GENERATORS = {
    "glideator": glideator.write,
    "trajectory": trajectory.write,
    "import": tabular.import_table,
}
