"""What a trial's code is handed: where its batches come from, where its reports go, what it
resumes from. The trial executors (runner/executors.py) make one per trial, in the Tune trial
process or in each Ray Train worker; a workload kind (trainables/) trains through it and never
touches Ray.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Protocol

import numpy as np
import torch
from torch import nn

Batch = dict[str, torch.Tensor]              # column -> (rows, *shape) tensor
Columns = dict[str, np.ndarray]              # column -> (rows, *shape) array: a whole split
# Writes a checkpoint's files into the directory it is given (the executor seals and reports it).
CheckpointWriter = Callable[[Path], None]


@dataclass
class TrialData:
    """A trial's data: fresh batch iterables per epoch, or a split whole (model families fit on
    it at once). Under a TorchTrainer each worker's train batches are its own share."""

    train: Callable[[int], Iterable[Batch]]   # epoch -> the training batches, shuffled for that epoch
    val: Callable[[], Iterable[Batch]]        # the validation split in batches
    whole: Callable[[str], Columns]           # "train" | "val" -> the split as numpy columns


class Session(Protocol):
    """The executor's side of one trial (or one worker of a TorchTrainer trial)."""

    meta: dict                      # the dataset's meta.json
    data: TrialData
    device: torch.device            # where this process trains: its GPU, else the CPU
    threads: int                    # CPUs this process holds (torch's and pyarrow's threads are set)
    resumed: Path | None            # the checkpoint directory a restarted trial goes on from; None: fresh
    world_rank: int                 # 0 in the trial process; the worker's rank under a TorchTrainer
    world_size: int
    data_path: str                  # the spec's data.path, as the spec gives it

    def report(self, metrics: dict, checkpoint: CheckpointWriter | None = None) -> None:
        """Report an epoch's metrics and, where `checkpoint` writes one, its checkpoint."""
        ...

    def prepare_model(self, model: nn.Module) -> nn.Module:
        """The model on this process's device, wrapped for DDP under several workers."""
        ...
