"""Training pieces shared by every workload: the loop, losses, schedules, precision, checkpoints.

Nothing here imports Ray: the loop gets batches and a `report` callable from the trial
executors (`raysweep.runner`), and knows a workload through `contract.Trainable`.
"""
