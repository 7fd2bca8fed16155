"""Training pieces shared by every workload: the epoch loop and metrics."""
