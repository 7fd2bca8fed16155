"""What the training loop needs from a workload: the `Trainable` contract.

A workload is a module (see `raysweep.workloads`); the loop calls only what is listed here, so
these are the types its signatures use. `raysweep.workloads.contract.Workload` extends this with
what the rest of raysweep needs (data, task, export inputs).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np
import torch
from torch import nn

from raysweep.training.config import TrainingConfig

Batch = dict[str, torch.Tensor]   # column name -> tensor whose first dimension is the row


@runtime_checkable
class Trainable(Protocol):
    """A model, its objective and its validation metrics, as module-level names."""

    Config: type[TrainingConfig]   # frozen dataclass: the runnable defaults, overridden by the spec
    METRICS: dict[str, str]        # every reported metric -> "min" or "max"

    def build_model(self, cfg: TrainingConfig, meta: dict) -> nn.Module:
        """The model for a config and the dataset's meta.json (sizes, scalers)."""
        ...

    def compute_loss(self, model: nn.Module, batch: Batch, cfg: TrainingConfig) -> tuple[torch.Tensor, torch.Tensor]:
        """The training objective of one batch and the model's outputs."""
        ...

    def predict(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        """Outputs for a batch, as `compute_metrics` and an exported model take them."""
        ...

    def compute_metrics(self, outputs: np.ndarray, labels: np.ndarray, meta: dict) -> dict[str, float]:
        """Validation metrics over a whole split; must include `val_loss`."""
        ...
