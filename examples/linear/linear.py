"""A noisy linear target learnt by a small MLP: a whole raysweep workload, its data included."""
from dataclasses import dataclass

import torch

from raysweep.workloads import DataCommand, TrainingConfig, write_dataset

TASK = "regression"                                  # or binary, multiclass, multilabel
METRICS = {"val_loss": "min", "train_loss": "min"}   # each metric it reports: "min" or "max"

def write(out_dir, *, seed=0, fmt="parquet"):        # `raysweep data ./linear.py --out DIR`
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(5000, 4, generator=g)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5], [0.0]]) + 0.1 * torch.randn(5000, 1, generator=g)
    splits = {"train": {"features": x[:4000], "labels": y[:4000]}, "val": {"features": x[4000:], "labels": y[4000:]}}
    return write_dataset(out_dir, splits, fmt=fmt, workload="linear", feature_names=list("abcd"))

DATA = DataCommand("linear", "a noisy linear target", write)

@dataclass(frozen=True)
class Config(TrainingConfig):   # with epochs, batch_size, learning_rate, schedules, early stopping...
    hidden_units: int = 32

def build_model(cfg, meta):
    return torch.nn.Sequential(torch.nn.Linear(4, cfg.hidden_units), torch.nn.ReLU(), torch.nn.Linear(cfg.hidden_units, 1))

def predict(model, batch):
    return model(batch["features"])

def compute_loss(model, batch, cfg):                 # -> (loss, outputs)
    outputs = predict(model, batch)
    return torch.nn.functional.mse_loss(outputs, batch["labels"]), outputs

def compute_metrics(outputs, labels, meta):          # numpy arrays: the whole validation split
    return {"val_loss": float(((outputs - labels) ** 2).mean())}

def model_inputs(meta):                              # the columns an exported model takes, in order
    return ["features"]
