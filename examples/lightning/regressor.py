"""A LightningModule tuned as it is: Lightning's own Trainer trains it inside raysweep's trials."""
from dataclasses import dataclass

import pytorch_lightning as pl
import torch

from raysweep.trainables import lightning
from raysweep.workloads import DataCommand, TrainingConfig, write_dataset

TASK = "regression"
METRICS = {"val_loss": "min", "train_loss": "min"}   # what the module logs

def write(out_dir, *, seed=0, fmt="parquet"):        # `raysweep data ./regressor.py --out DIR`
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(4000, 4, generator=g)
    y = torch.sin(x @ torch.tensor([[1.0], [-2.0], [0.5], [0.0]])) + 0.05 * torch.randn(4000, 1, generator=g)
    splits = {"train": {"features": x[:3200], "labels": y[:3200]}, "val": {"features": x[3200:], "labels": y[3200:]}}
    return write_dataset(out_dir, splits, fmt=fmt, workload="regressor", feature_names=list("abcd"))
DATA = DataCommand("regressor", "a noisy sine of a linear mix", write)


class Regressor(pl.LightningModule):                # the module you already have, unchanged
    def __init__(self, hidden_units: int = 32, learning_rate: float = 1e-2, momentum: float = 0.9):
        super().__init__()
        self.save_hyperparameters()
        self.net = torch.nn.Sequential(torch.nn.Linear(4, hidden_units), torch.nn.Tanh(), torch.nn.Linear(hidden_units, 1))
        self.example_input_array = torch.zeros(1, 4)   # what fixed.measure_latency times forward on

    def forward(self, features):
        return self.net(features)

    def training_step(self, batch, batch_idx):
        loss = torch.nn.functional.mse_loss(self(batch["features"]), batch["labels"])
        self.log("train_loss", loss, on_step=False, on_epoch=True)
        return loss

    def validation_step(self, batch, batch_idx):
        self.log("val_loss", torch.nn.functional.mse_loss(self(batch["features"]), batch["labels"]))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.hparams.learning_rate, momentum=self.hparams.momentum)


@dataclass(frozen=True)
class Config(TrainingConfig):
    hidden_units: int = 32


def train(cfg, data, session):                      # raysweep's side: one call
    module = Regressor(cfg.hidden_units, cfg.learning_rate, cfg.momentum)
    lightning.fit(module, data, session, max_epochs=cfg.epochs)
