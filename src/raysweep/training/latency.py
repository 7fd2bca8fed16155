"""A model's inference latency and size, measured in the trial as metrics to optimise or constrain.

`fixed.measure_latency: true` adds two metrics to what a PyTorch trial reports: `latency_ms`,
the median time of one forward pass over a batch of `latency_batch_size` rows on the trial's
device, and `parameters`, the model's parameter count. Both are better lower.
"""

from __future__ import annotations

METRICS = {"latency_ms": "min", "parameters": "min"}
