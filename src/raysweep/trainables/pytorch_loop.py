"""The `loop` kind: a model, a loss and metrics, trained by raysweep's own loop (training/loop.py).

The module defines `build_model(cfg, meta)`, `compute_loss(model, batch, cfg)`, `predict(model,
batch)`, `compute_metrics(outputs, labels, meta)` and `model_inputs(meta)` (and may define
`configure_optimizer(model, cfg)`); its Config extends TrainingConfig, so schedules, precision,
accumulation, clipping and early stopping come with the loop. The only kind lr-find and
io-search can run: both time and step the loop itself.
"""

from __future__ import annotations

import contextlib
import dataclasses
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from raysweep.trainables import pytorch_export, torchscript
from raysweep.trainables.contract import PHASES, Predict, function_problems, signatures
from raysweep.trainables.session import Columns, Session
from raysweep.training import checkpoint, loop
from raysweep.training.config import TrainingConfig
from raysweep.training.contract import Trainable


class LoopWorkload(Trainable, Protocol):
    """A workload of raysweep's loop: the loop's contract (training/contract.py) and its inputs."""

    def model_inputs(self, meta: dict) -> list[str]:
        """The batch columns `predict` reads, in the order an exported model takes them."""
        ...

    def configure_optimizer(self, model: torch.nn.Module, cfg: TrainingConfig) -> torch.optim.Optimizer:
        """Optional: an optimiser of its own (parameter groups), in place of `cfg.optimizer`."""
        ...


FUNCTIONS = signatures(LoopWorkload, ("build_model", "compute_loss", "predict", "compute_metrics", "model_inputs"))
OPTIONAL = signatures(LoopWorkload, ("configure_optimizer",))


def config_problems(module: Any, shown: str) -> list[str]:
    config = getattr(module, "Config", None)
    if isinstance(config, type) and dataclasses.is_dataclass(config) and issubclass(config, TrainingConfig):
        return []
    return [f"{shown}: Config must be a dataclass extending raysweep.training.config.TrainingConfig "
            "(its defaults are a runnable baseline)"]


@contextlib.contextmanager
def _no_initialisation():
    """`torch.nn.init`'s in-place initialisers as no-ops while a model is built for its shapes.

    On meta tensors the random ones go through torch's reference implementations, whose first
    call imports TorchDynamo: a second of every `raysweep run` (bench/startup.py) for values a
    meta tensor does not hold anyway.
    """
    names = [n for n in dir(torch.nn.init) if n.endswith("_") and not n.startswith("_")]
    saved = {n: getattr(torch.nn.init, n) for n in names}
    try:
        for name in names:
            setattr(torch.nn.init, name, lambda tensor, *args, **kwargs: tensor)
        yield
    finally:
        for name, fn in saved.items():
            setattr(torch.nn.init, name, fn)


def parameter_count(build, cfg: Any, meta: dict) -> int:
    """The parameters of `build(cfg, meta)`'s model, built for its shapes only where it can be."""
    try:
        with torch.device("meta"), _no_initialisation():   # no memory, no time, whatever the size
            model = build(cfg, meta)
    except Exception:  # noqa: BLE001 - a model that reads tensor values as it is built: build it for real
        model = build(cfg, meta)
    return sum(p.numel() for p in model.parameters())


def build_with_weights(module: Any, cfg: Any, meta: dict, weights: dict) -> torch.nn.Module:
    """The module's model for the config, with `weights`, in eval mode, on the CPU."""
    model = module.build_model(cfg, meta)
    model.load_state_dict(weights)
    model.eval().requires_grad_(False)
    return model


class PyTorchLoop:
    name = "loop"
    label = "raysweep's PyTorch loop"
    phases = frozenset(PHASES)
    executors = frozenset({"in_trial", "torch_trainer"})
    reads_its_own_data = False
    gpus = True
    ensembles = False

    def problems(self, module: Any, shown: str) -> list[str]:
        return function_problems(module, shown, FUNCTIONS, OPTIONAL) + config_problems(module, shown)

    def run(self, module: Any, cfg: Any, session: Session) -> None:
        resume = checkpoint.load(session.resumed) if session.resumed is not None else None
        trainee = loop.build(module, cfg, session.meta, device=session.device, wrap_model=session.prepare_model,
                             resume=resume)

        def report(metrics: dict, files: dict | None) -> None:
            session.report(metrics, (lambda directory: checkpoint.save(directory, files)) if files else None)

        loop.run_epochs(module, cfg, trainee, loop.EpochData(session.data.train, session.data.val), report,
                        device=session.device)

    def parameters(self, module: Any, cfg: Any, meta: dict) -> int | None:
        return parameter_count(module.build_model, cfg, meta)

    def best_checkpoint(self, checkpoints: list[Path], metric: str, mode: str) -> Path:
        return checkpoints[-1]   # the latest holds the best epoch's weights too (best.pt)

    def weights(self, directory: Path) -> dict:
        """The checkpoint payload to deploy: the best epoch's (best.pt), else the last's."""
        payload = checkpoint.model_weights(directory)
        if payload is None:
            raise FileNotFoundError(f"{directory} holds no model weights ({checkpoint.BEST_FILE} or "
                                    f"{checkpoint.LAST_FILE})")
        return payload

    def load_predictor(self, module: Any, cfg: Any, meta: dict, directory: Path) -> Predict:
        model = build_with_weights(module, cfg, meta, self.weights(directory)["model"])
        return lambda columns: torchscript.in_chunks(lambda chunk: module.predict(model, chunk),
                                                     torchscript.tensors(columns))

    def probabilities(self, outputs: np.ndarray) -> np.ndarray:
        return torchscript.sigmoid(outputs)   # a classifier's outputs are logits

    def export(self, module: Any, cfg: Any, meta: dict, directory: Path, to: Path, example: Columns, *,
               formats: tuple[str, ...] | None = None, check: Columns | None = None) -> dict:
        payload = self.weights(directory)
        model = build_with_weights(module, cfg, meta, payload["model"])
        entries = pytorch_export.export(module, model, meta, example, to, formats=formats, check=check)
        return {**entries, "weights": {"epoch": payload.get("epoch"), "metrics": payload.get("metrics", {}),
                                       "note": "the best epoch's weights by the trial's early_stopping_metric"}}


KIND = PyTorchLoop()
