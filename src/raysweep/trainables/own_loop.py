"""The `own_loop` kind: a training loop of the user's own, tuned as it is.

    def train(cfg, data, session):
        model = session.prepare_model(build_model(cfg, session.meta))
        optimizer = torch.optim.SGD(model.parameters(), lr=cfg.learning_rate)
        start = 0
        if session.resumed_state:                      # after a pause, a retry or a driver crash
            model.load_state_dict(session.resumed_state["model"])
            optimizer.load_state_dict(session.resumed_state["optimizer"])
            start = session.resumed_state["epoch"]
        for epoch in range(start, cfg.epochs):
            for batch in data.train(epoch): ...        # dict batches on session.device
            session.report({"epoch": epoch + 1, "val_loss": ...},
                           state={"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch + 1})

The module defines `train(cfg, data, session)`; its Config extends TrainingConfig (epochs,
batch_size, learning_rate, seed: what schedulers and the data stream read). `data` gives the
same batches raysweep's loop gets (`data.train(epoch)`, `data.val()`); `session.data_path` is
the spec's data.path for a loop that reads its data itself. Each report checkpoints the `state`
it carries (any mapping torch.save writes and torch.load(weights_only=True) reads: state
dicts, tensors, numbers), and `session.resumed_state` hands it back to a restarted trial.

With `build_model(cfg, meta)`, `predict(model, batch)` and `model_inputs(meta)` as well (and
`state["model"]` the model's state_dict), `export` writes TorchScript and the plots predict;
without them `export` writes the best checkpoint's state and a card that says how to load it.
"""

from __future__ import annotations

import json
import math
import random
import shutil
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from raysweep.trainables import pytorch_loop, torchscript
from raysweep.trainables.contract import Predict, function_problems
from raysweep.trainables.session import Columns, Session, TrialData
from raysweep.training import checkpoint, returns

FUNCTIONS = {"train": ("cfg", "data", "session")}
OPTIONAL = {"build_model": ("cfg", "meta"), "predict": ("model", "batch"), "model_inputs": ("meta",),
            "compute_metrics": ("outputs", "labels", "meta")}
STATE_FILE = "state.pt"
MODELLING = ("build_model", "predict", "model_inputs")   # what export and the plots need of a model


def seed(value: int) -> None:
    random.seed(value)
    np.random.seed(value)
    torch.manual_seed(value)


class OwnSession:
    """What an own loop is handed: its device, its reports, the state it resumes from."""

    def __init__(self, session: Session, declared: dict[str, str], task: str | None):
        self._session, self._declared, self._task = session, declared, task
        self._checked = returns.Checked()
        self.resumed_state: dict | None = None
        if session.resumed is not None and (session.resumed / STATE_FILE).is_file():
            self.resumed_state = torch.load(session.resumed / STATE_FILE, weights_only=True)

    @property
    def device(self) -> torch.device:
        return self._session.device

    @property
    def meta(self) -> dict:
        return self._session.meta

    @property
    def data_path(self) -> str:
        return self._session.data_path

    @property
    def resumed_dir(self) -> Path | None:
        """The directory of the checkpoint a restarted trial goes on from (what `files` wrote)."""
        return self._session.resumed

    @property
    def world_rank(self) -> int:
        return self._session.world_rank

    @property
    def world_size(self) -> int:
        return self._session.world_size

    def prepare_model(self, model: nn.Module) -> nn.Module:
        """The model on this trial's device; under several TorchTrainer workers, wrapped in DDP."""
        return self._session.prepare_model(model.to(self.device))

    def report(self, metrics: dict, state: dict | None = None, *, files: Callable[[Path], None] | None = None) -> None:
        """Report an epoch: its metrics (METRICS names them; `epoch` counts the scheduler's time)
        and the state to checkpoint with it, or `files(directory)` that writes a checkpoint of
        its own (a Lightning checkpoint); neither: this report carries no checkpoint."""
        if self._checked.first("report"):
            metrics = returns.metrics(metrics, self._declared, self._task, source="train's session.report got",
                                      loop_adds=("epoch",))
        else:
            metrics = returns.as_floats(metrics)

        def writer(directory: Path) -> None:
            if state is not None:
                torch.save(state, Path(directory) / STATE_FILE)
            if files is not None:
                files(Path(directory))

        self._session.report(metrics, writer if state is not None or files is not None else None)


class OwnLoop:
    name = "own_loop"
    label = "a training loop of its own (train(cfg, data, session))"
    phases: frozenset[str] = frozenset()
    executors = frozenset({"in_trial", "torch_trainer"})
    gpus = True
    ensembles = False

    def problems(self, module: Any, shown: str) -> list[str]:
        return function_problems(module, shown, FUNCTIONS, OPTIONAL) + pytorch_loop.config_problems(module, shown)

    def run(self, module: Any, cfg: Any, session: Session) -> None:
        own = OwnSession(session, module.METRICS, getattr(module, "TASK", None) or session.meta.get("task"))

        def on_device(batches):
            for batch in batches:
                yield {k: v.to(session.device, non_blocking=True) for k, v in batch.items()}

        data = TrialData(train=lambda epoch: on_device(session.data.train(epoch)),
                         val=lambda: on_device(session.data.val()), whole=session.data.whole)
        seed(cfg.seed)   # as raysweep's loop does: a config's seed gives the same trial
        module.train(cfg, data, own)

    def parameters(self, module: Any, cfg: Any, meta: dict) -> int | None:
        build = getattr(module, "build_model", None)
        return pytorch_loop.parameter_count(build, cfg, meta) if build else None

    def best_checkpoint(self, checkpoints: list[Path], metric: str, mode: str) -> Path:
        """The kept checkpoint whose own report was best on `metric` (the latest, without reports)."""
        def score(directory: Path) -> float:
            reports = checkpoint.reports(directory)
            value = reports[-1].get(metric) if reports else None
            value = math.nan if not isinstance(value, (int, float)) else float(value)
            return -math.inf if math.isnan(value) else (value if mode == "max" else -value)

        return max(reversed(checkpoints), key=score)   # of equal ones, the latest

    def _model(self, module: Any, cfg: Any, meta: dict, directory: Path) -> nn.Module:
        missing = [name for name in MODELLING if not callable(getattr(module, name, None))]
        if missing:
            raise ValueError(f"an own loop's model is rebuilt from build_model, predict and model_inputs; the workload "
                             f"lacks {', '.join(missing)}, so its checkpoints' state is what there is")
        state = torch.load(directory / STATE_FILE, weights_only=True)
        if not isinstance(state, dict) or not isinstance(state.get("model"), dict):
            raise ValueError(f"{directory / STATE_FILE} holds no 'model' state_dict; report "
                             "state={'model': model.state_dict(), ...} for raysweep to rebuild the model")
        return pytorch_loop.build_with_weights(module, cfg, meta, state["model"])

    def load_predictor(self, module: Any, cfg: Any, meta: dict, directory: Path) -> Predict:
        model = self._model(module, cfg, meta, directory)
        return lambda columns: torchscript.in_chunks(lambda chunk: module.predict(model, chunk),
                                                     torchscript.tensors(columns))

    def probabilities(self, outputs: np.ndarray) -> np.ndarray:
        return torchscript.sigmoid(outputs)   # as the built-in loop's: a classifier's outputs are logits

    def export(self, module: Any, cfg: Any, meta: dict, directory: Path, to: Path, example: Columns) -> dict:
        reports = checkpoint.reports(directory)
        at = {"epoch": reports[-1].get("epoch") if reports else None, "metrics": reports[-1] if reports else {}}
        if all(callable(getattr(module, name, None)) for name in MODELLING):
            entries = torchscript.export(module, self._model(module, cfg, meta, directory), meta, example, to)
            return {**entries, "weights": {**at, "note": "the state['model'] of the trial's best kept checkpoint"}}
        to.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(directory / STATE_FILE, to / STATE_FILE)
        (to / "reports.json").write_text(json.dumps(reports, default=str))
        return {"files": [STATE_FILE, "reports.json"],
                "state": {**at, "file": STATE_FILE, "load": f"torch.load({STATE_FILE!r}, weights_only=True)",
                          "note": "the state the trial's loop reported with its best kept checkpoint; define "
                                  "build_model, predict and model_inputs in the workload to export TorchScript"}}


KIND = OwnLoop()
