"""Early stopping with patience, keeping the best epoch's weights to restore at the end.

The best weights live on the CPU (a copy of the state_dict), so holding them costs no GPU memory.
The tracker's state goes into every checkpoint, so a resumed trial keeps counting from where
it was and still restores the right weights.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field

import torch


@dataclass
class EarlyStopping:
    metric: str = "val_loss"
    mode: str = "min"
    patience: int = 0            # 0: never stop, but still remember the best epoch
    min_delta: float = 0.0
    best_value: float | None = None
    best_epoch: int = 0          # 1-based; 0 = none yet
    best_metrics: dict = field(default_factory=dict)
    best_weights: dict | None = None
    bad_epochs: int = 0

    def improved(self, value: float) -> bool:
        if value is None or math.isnan(value):
            return False
        if self.best_value is None:
            return True
        if self.mode == "min":
            return value < self.best_value - self.min_delta
        return value > self.best_value + self.min_delta

    def update(self, epoch: int, metrics: dict, model: torch.nn.Module) -> bool:
        """Record this epoch (1-based); returns True when patience has run out."""
        if self.improved(metrics.get(self.metric)):
            self.best_value = float(metrics[self.metric])
            self.best_epoch = epoch
            self.best_metrics = dict(metrics)
            self.best_weights = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
            self.bad_epochs = 0
        else:
            self.bad_epochs += 1
        return 0 < self.patience <= self.bad_epochs

    def restore(self, model: torch.nn.Module) -> None:
        if self.best_weights is not None:
            model.load_state_dict(self.best_weights)

    def state_dict(self) -> dict:
        return {"best_value": self.best_value, "best_epoch": self.best_epoch,
                "best_metrics": copy.deepcopy(self.best_metrics), "bad_epochs": self.bad_epochs}

    def load_state_dict(self, state: dict, best_weights: dict | None) -> None:
        self.best_value = state["best_value"]
        self.best_epoch = state["best_epoch"]
        self.best_metrics = dict(state["best_metrics"])
        self.bad_epochs = state["bad_epochs"]
        self.best_weights = best_weights
