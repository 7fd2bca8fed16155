"""A LightningModule tuned as it is: Lightning's own Trainer, inside an own loop's `train`.

    import pytorch_lightning as pl
    from raysweep.trainables import lightning

    def train(cfg, data, session):
        lightning.fit(MyModule(hidden=cfg.hidden_units, lr=cfg.learning_rate), data, session,
                      max_epochs=cfg.epochs)

`fit` runs `pl.Trainer(...).fit` on raysweep's batches (the dict batches `data.train(epoch)` and
`data.val()` give, one epoch's worth each time Lightning asks), and a callback reports each
epoch: `epoch` and every metric the module logs (`self.log("val_loss", ...)`), with Lightning's
own checkpoint of that moment (`trainer.save_checkpoint`), which Lightning reads back itself
(`ckpt_path`) when the trial starts again after a pause, a retry or a driver crash: the run goes
on where it was. Lightning's progress bar, logger and checkpointing are off: raysweep reports.

Needs pytorch-lightning: `pip install raysweep[lightning]`. Imported only by a workload that
uses it. Trials run in the trial process (executor: in_trial); under a TorchTrainer use an own
loop with `session.prepare_model`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch

from raysweep.trainables.own_loop import LIGHTNING_FILE
from raysweep.training import returns

CHECKPOINT = LIGHTNING_FILE


class _Epochs:
    """One epoch's batches each time Lightning iterates: `data.train(epoch)` for the epoch its
    trainer is in (resumed runs start at their checkpoint's)."""

    def __init__(self, batches, trainer_epoch):
        self._batches, self._epoch = batches, trainer_epoch

    def __iter__(self):
        return iter(self._batches(self._epoch()))


class ReportEachEpoch(pl.Callback):
    """Reports every epoch to raysweep with what the module logged, and checkpoints the run."""

    def __init__(self, session):
        self.session = session

    def on_train_epoch_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items()
                   if isinstance(v, (int, float)) or (isinstance(v, torch.Tensor) and v.numel() == 1)}
        if self.session.latency_due(trainer.current_epoch + 1, trainer.max_epochs or 0):
            metrics.update(self.session.measure_latency(module, example_inputs(module)))
        self.session.report({"epoch": trainer.current_epoch + 1, **metrics},
                            files=lambda directory: trainer.save_checkpoint(Path(directory) / CHECKPOINT))


def example_inputs(module: pl.LightningModule):
    """What `fixed.measure_latency` times the module on: Lightning's own `example_input_array`
    (a tensor, a tuple or a dict, as `forward` takes them), which the module must set."""
    if module.example_input_array is None:
        raise returns.WorkloadReturnError(
            f"fixed.measure_latency: {type(module).__name__} sets no example_input_array to time its forward on; "
            "set it in __init__, e.g. self.example_input_array = torch.zeros(1, n_features) (Lightning's convention)")
    return module.example_input_array


def fit(module: pl.LightningModule, data, session, **trainer_args: Any) -> pl.Trainer:
    """Train `module` with Lightning's Trainer on the trial's data, reporting each epoch; a
    restarted trial goes on from its last Lightning checkpoint. `trainer_args` reach pl.Trainer
    (max_epochs, gradient_clip_val, precision...) and override raysweep's defaults.

    Raises:
        RuntimeError: under several TorchTrainer workers (each would train a copy of its own).
    """
    if session.world_size > 1:
        raise RuntimeError("raysweep.trainables.lightning trains in one process: run its trials with "
                           "resources.workers_per_trial: 1 (executor in_trial), or write the loop with "
                           "session.prepare_model for DDP")
    callbacks = [ReportEachEpoch(session), *trainer_args.pop("callbacks", [])]
    settings = {"accelerator": "gpu" if session.device.type == "cuda" else "cpu", "devices": 1,
                "enable_progress_bar": False, "enable_model_summary": False, "enable_checkpointing": False,
                "logger": False, "num_sanity_val_steps": 0, **trainer_args}
    trainer = pl.Trainer(callbacks=callbacks, **settings)
    resumed = session.resumed_dir / CHECKPOINT if session.resumed_dir is not None else None
    trainer.fit(module, train_dataloaders=_Epochs(data.train, lambda: trainer.current_epoch),
                val_dataloaders=_Epochs(lambda epoch: data.val(), lambda: 0),
                ckpt_path=str(resumed) if resumed is not None and resumed.is_file() else None)
    return trainer
