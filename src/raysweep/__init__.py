"""raysweep: Ray-distributed hyperparameter sweeps for PyTorch training pipelines."""

__version__ = "0.1.0"
