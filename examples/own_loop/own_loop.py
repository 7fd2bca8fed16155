"""A training loop of your own, tuned as it is: raysweep calls train() and takes its reports."""
from dataclasses import dataclass

import torch

from raysweep.workloads import DataCommand, TrainingConfig, write_dataset

TASK = "regression"
METRICS = {"val_loss": "min"}                                 # what train() reports

def write(out_dir, *, seed=0, fmt="parquet"):                 # `raysweep data ./own_loop.py --out DIR`
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(4000, 4, generator=g)
    y = torch.sin(x @ torch.tensor([[1.0], [-2.0], [0.5], [0.0]])) + 0.05 * torch.randn(4000, 1, generator=g)
    splits = {"train": {"features": x[:3200], "labels": y[:3200]}, "val": {"features": x[3200:], "labels": y[3200:]}}
    return write_dataset(out_dir, splits, fmt=fmt, workload="own_loop", feature_names=list("abcd"))
DATA = DataCommand("own_loop", "a noisy sine of a linear mix", write)

@dataclass(frozen=True)
class Config(TrainingConfig):   # epochs, batch_size, learning_rate, momentum, seed...
    hidden_units: int = 32

def train(cfg, data, session):                                  # the loop you already have
    model = session.prepare_model(torch.nn.Sequential(
        torch.nn.Linear(4, cfg.hidden_units), torch.nn.Tanh(), torch.nn.Linear(cfg.hidden_units, 1)))
    optimizer = torch.optim.SGD(model.parameters(), lr=cfg.learning_rate, momentum=cfg.momentum)
    state, start = session.resumed_state, 0                      # after a pause, a retry or a crash
    if state:
        model.load_state_dict(state["model"]), optimizer.load_state_dict(state["optimizer"])
        start = state["epoch"]
    for epoch in range(start, cfg.epochs):
        for batch in data.train(epoch):                          # dict batches, on session.device
            loss = torch.nn.functional.mse_loss(model(batch["features"]), batch["labels"])
            optimizer.zero_grad(), loss.backward(), optimizer.step()
        with torch.no_grad():
            val_loss = sum(torch.nn.functional.mse_loss(model(b["features"]), b["labels"], reduction="sum").item()
                           for b in data.val()) / session.meta["rows"]["val"]
        session.report({"epoch": epoch + 1, "val_loss": val_loss},
                       state={"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch + 1})
