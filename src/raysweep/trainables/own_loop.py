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
`session.measure_latency(model, inputs)` times the model as training/latency.py does for
raysweep's loop and returns `latency_ms` and `parameters` to add to a report (what
`fixed.measure_latency: true` asks the reports to carry).

With `build_model(cfg, meta)`, `predict(model, batch)` and `model_inputs(meta)` as well (and
`state["model"]` the model's state_dict), `export` writes TorchScript (or ONNX, or both: `--format`)
and the plots predict; without them `export` writes the best checkpoint's state and a card that
says how to load it.
"""

from __future__ import annotations

import io
import math
import random
import shutil
from pathlib import Path
from typing import Any, Callable, Protocol

import numpy as np
import torch
from torch import nn
from torch.nn.modules.utils import consume_prefix_in_state_dict_if_present

from raysweep.trainables import pytorch_export, pytorch_loop, torchscript
from raysweep.trainables.contract import Predict, function_problems, signatures
from raysweep.trainables.session import Columns, Session, TrialData
from raysweep.training import checkpoint, latency, returns
from raysweep.training.config import TrainingConfig


class OwnLoopWorkload(Protocol):
    """A workload with a training loop of its own; the model functions are optional (export)."""

    Config: type            # a dataclass extending TrainingConfig
    METRICS: dict[str, str]

    def train(self, cfg: Any, data: TrialData, session: "OwnSession") -> None:
        """Train one trial, reporting each epoch through `session`."""
        ...

    def build_model(self, cfg: Any, meta: dict) -> nn.Module:
        ...

    def predict(self, model: nn.Module, batch: dict) -> torch.Tensor:
        ...

    def model_inputs(self, meta: dict) -> list[str]:
        ...

    def compute_metrics(self, outputs: np.ndarray, labels: np.ndarray, meta: dict) -> dict[str, float]:
        ...


FUNCTIONS = signatures(OwnLoopWorkload, ("train",))
OPTIONAL = signatures(OwnLoopWorkload, ("build_model", "predict", "model_inputs", "compute_metrics"))
STATE_FILE = "train_state.pt"       # what session.report(state=...) checkpoints
LIGHTNING_FILE = "lightning.ckpt"   # what raysweep.trainables.lightning checkpoints
MODELLING = ("build_model", "predict", "model_inputs")   # what export and the plots need of a model


def _loads_back(state: dict) -> None:
    """The state must read back as it will on a restart: with torch.load(weights_only=True)."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    try:
        torch.load(buffer, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch's unpickler raises several types
        raise returns.WorkloadReturnError(
            "train's session.report got a state that torch.load(weights_only=True) cannot read back "
            f"({str(exc).splitlines()[0][:200]}); keep it to state dicts, tensors, numbers and strings (NumPy's "
            "random state as np.random.default_rng().bit_generator.state, Python's as a list)") from None


def seed(value: int) -> None:
    random.seed(value)
    np.random.seed(value)
    torch.manual_seed(value)


class OwnSession:
    """What an own loop is handed: its device, its reports, the state it resumes from, and a
    helper that times its model (`measure_latency`). `cfg` is the trial's Config, whose
    `latency_*` fields the helper reads (TrainingConfig's defaults where it has none)."""

    def __init__(self, session: Session, declared: dict[str, str], task: str | None, *, cfg: Any = None):
        self._session, self._declared, self._task = session, declared, task
        self._cfg = cfg
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

    def _setting(self, name: str) -> Any:
        return getattr(self._cfg, name, getattr(TrainingConfig, name))

    def latency_due(self, epoch: int, last_epoch: int) -> bool:
        """Whether `fixed.measure_latency` asks this epoch's report for latency_ms and parameters
        (every epoch, or the last with `latency_every: last`)."""
        return bool(self._setting("measure_latency")) and (self._setting("latency_every") == "epoch"
                                                            or epoch >= last_epoch)

    def measure_latency(self, model: nn.Module, inputs: latency.Inputs) -> dict[str, float | int]:
        """`{"latency_ms": ..., "parameters": ...}` of `model`, to add to a report:
        `session.report({"epoch": epoch + 1, "val_loss": v, **session.measure_latency(model, batch["features"])})`.

        `inputs` are what the model takes, as a deployment would give them: a tensor
        (`model(inputs)`), a tuple of tensors (`model(*inputs)`) or a dict (`model(**inputs)`),
        rows first (a validation batch's columns will do). The model is timed in eval mode
        without gradients on `cfg.latency_batch_size` rows (repeated where fewer are given):
        `cfg.latency_batches` warm-up passes, then the median of as many timed ones, in ms; its
        modes are put back after. A DDP-wrapped model is timed unwrapped. On the workers other
        than rank 0 of a TorchTrainer trial it measures nothing and returns {} (Tune keeps rank
        0's reports). It measures whenever called; with `fixed.measure_latency: true` the
        reports must carry it (every epoch, or the last with `latency_every: last`).
        """
        if self.world_rank != 0:
            return {}
        module = model.module if isinstance(model, (nn.parallel.DistributedDataParallel, nn.DataParallel)) else model
        return latency.measure_inputs(module, inputs, n_rows=self._setting("latency_batch_size"),
                                      n_batches=self._setting("latency_batches"), device=self.device)

    def _latency_problem(self, metrics: dict) -> str | None:
        """Why a first report lacks what `fixed.measure_latency` asks of every epoch; None where it has it."""
        if not (self._setting("measure_latency") and self._setting("latency_every") == "epoch") or self.world_rank != 0:
            return None
        missing = [name for name in latency.METRICS if name not in metrics]
        if not missing:
            return None
        return (f"train's session.report got no {', '.join(missing)}, which fixed.measure_latency asks of every "
                "epoch; report {'epoch': epoch + 1, ..., **session.measure_latency(model, inputs)} "
                "(or set fixed.latency_every: last and add it to the last epoch's report)")

    def report(self, metrics: dict, state: dict | None = None, *, files: Callable[[Path], None] | None = None) -> None:
        """Report an epoch: its metrics (METRICS names them; `epoch` counts the scheduler's time)
        and the state to checkpoint with it, or `files(directory)` that writes a checkpoint of
        its own (a Lightning checkpoint); neither: this report carries no checkpoint."""
        if self._checked.first("report"):
            metrics = returns.metrics(metrics, self._declared, self._task, source="train's session.report got",
                                      loop_adds=("epoch",))
            problem = self._latency_problem(metrics)
            if problem:
                raise returns.WorkloadReturnError(problem)
            epoch = metrics.get("epoch")
            if not isinstance(epoch, int) or isinstance(epoch, bool) or epoch < 1:
                raise returns.WorkloadReturnError(
                    f"train's session.report got epoch={epoch!r}; report {{'epoch': epoch + 1, ...}} with each epoch: "
                    "the schedulers count epochs (ASHA's rungs, HyperBand's brackets)")
            if state is not None:
                _loads_back(state)
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
    reads_its_own_data = True
    gpus = True
    ensembles = False

    def problems(self, module: Any, shown: str) -> list[str]:
        return function_problems(module, shown, FUNCTIONS, OPTIONAL) + pytorch_loop.config_problems(module, shown)

    def run(self, module: Any, cfg: Any, session: Session) -> None:
        own = OwnSession(session, module.METRICS, getattr(module, "TASK", None) or session.meta.get("task"), cfg=cfg)

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
        weights = dict(state["model"])
        consume_prefix_in_state_dict_if_present(weights, "module.")   # saved from the DDP-wrapped model
        return pytorch_loop.build_with_weights(module, cfg, meta, weights)

    def load_predictor(self, module: Any, cfg: Any, meta: dict, directory: Path) -> Predict:
        model = self._model(module, cfg, meta, directory)
        return lambda columns: torchscript.in_chunks(lambda chunk: module.predict(model, chunk),
                                                     torchscript.tensors(columns))

    def probabilities(self, outputs: np.ndarray) -> np.ndarray:
        return torchscript.sigmoid(outputs)   # as the built-in loop's: a classifier's outputs are logits

    def export(self, module: Any, cfg: Any, meta: dict, directory: Path, to: Path, example: Columns, *,
               formats: tuple[str, ...] | None = None, check: Columns | None = None) -> dict:
        reports = checkpoint.reports(directory)
        at = {"epoch": reports[-1].get("epoch") if reports else None, "metrics": reports[-1] if reports else {}}
        if all(callable(getattr(module, name, None)) for name in MODELLING):
            entries = pytorch_export.export(module, self._model(module, cfg, meta, directory), meta, example, to,
                                            formats=formats, check=check)
            return {**entries, "weights": {**at, "note": "the state['model'] of the trial's best kept checkpoint"}}
        if formats is not None:
            raise ValueError(f"--format {' and '.join(formats)} exports a model, which raysweep rebuilds from "
                             "build_model, predict and model_inputs; the workload lacks them, so its trial's state is "
                             "what can be exported (leave --format out)")
        to.mkdir(parents=True, exist_ok=True)
        kept = [p for p in sorted(directory.iterdir()) if p.is_file() and p.name not in (checkpoint.MANIFEST_FILE,)]
        for path in kept:
            shutil.copyfile(path, to / path.name)
        names = [p.name for p in kept]
        load = {STATE_FILE: f"torch.load({STATE_FILE!r}, weights_only=True)",
                LIGHTNING_FILE: f"YourLightningModule.load_from_checkpoint({LIGHTNING_FILE!r})"}
        return {"files": names,
                "state": {**at, "files": names, "load": "; ".join(load[n] for n in names if n in load),
                          "note": "what the trial's loop checkpointed with its best kept checkpoint, and its reports; "
                                  "define build_model, predict and model_inputs in the workload to export TorchScript"}}


KIND = OwnLoop()
