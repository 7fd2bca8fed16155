"""A model's inference latency and size, measured in the trial as metrics to optimise or constrain.

`fixed.measure_latency: true` adds two metrics to what a PyTorch trial reports: `latency_ms`,
the median time of one forward pass over a batch of `latency_batch_size` rows on the trial's
device, and `parameters`, the model's parameter count. Both are better lower.

What is timed is what a deployment runs: the model in eval mode, without gradients, in full
precision (an exported model carries no autocast), on the inputs an export feeds it (the
workload's `predict` on its `model_inputs` columns; an own loop names them). `latency_batches`
untimed passes warm the caches and the allocator first, then as many timed ones give the median,
which shrugs off the odd scheduling hiccup of a shared machine. On a GPU each timed pass is
fenced by `torch.cuda.synchronize`, so the time is the kernels', not their launch.

The cost: 2 x `latency_batches` forward passes of `latency_batch_size` rows (40 of one row by
default, milliseconds for most models) each time it measures, and those rows kept from the first
validation pass; nothing at all when `measure_latency` is off. Under DDP only rank 0 measures,
on its own module, and reports it (Tune keeps rank 0's reports).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, Mapping

import numpy as np
import torch
from torch import nn

from raysweep.training.config import TrainingConfig
from raysweep.training.contract import Batch, Trainable

METRICS = {"latency_ms": "min", "parameters": "min"}

# What an own loop hands `measure_inputs`: one tensor, tensors for positional arguments, or a
# mapping for keyword arguments, as its model takes them; the first dimension is the row.
Inputs = torch.Tensor | tuple[torch.Tensor, ...] | list[torch.Tensor] | Mapping[str, torch.Tensor]


def measures_here() -> bool:
    """True but on the ranks other than 0 of a process group (DDP): one worker measures for all."""
    distributed = torch.distributed.is_available() and torch.distributed.is_initialized()
    return not distributed or torch.distributed.get_rank() == 0


def due(cfg: TrainingConfig, *, final: bool) -> bool:
    """Whether this epoch measures: every epoch, or only the trial's last (`latency_every`)."""
    return cfg.measure_latency and (cfg.latency_every == "epoch" or final)


@dataclass
class FirstRows:
    """The first `n_rows` rows of a split, kept as a pass over it goes by, so the rows to time
    cost no second read of a streamed split."""

    n_rows: int
    kept: list[Batch] = field(default_factory=list)
    n_kept: int = 0
    done: bool = False

    def tap(self, batches: Iterable[Batch]) -> Iterator[Batch]:
        """`batches` unchanged, keeping rows from them until `n_rows` or the end of the first pass."""
        for batch in batches:
            if not self.done:
                self._keep(batch)
            yield batch
        self.done = True

    def _keep(self, batch: Batch) -> None:
        take = min(self.n_rows - self.n_kept, len(next(iter(batch.values()))))
        self.kept.append({name: values[:take].clone() for name, values in batch.items()})
        self.n_kept += take
        self.done = self.n_kept >= self.n_rows

    def rows(self) -> Batch | None:
        """The rows kept, as one batch; None where the pass saw none (an empty split)."""
        if not self.n_kept:
            return None
        return {name: torch.cat([part[name] for part in self.kept]) for name in self.kept[0]}


def batch_of(rows: Batch, n_rows: int, device: torch.device) -> Batch:
    """Exactly `n_rows` rows on `device`: the first of `rows`, repeated where it holds fewer."""
    held = len(next(iter(rows.values())))
    index = torch.arange(n_rows) % held
    return {name: values[index.to(values.device)].to(device) for name, values in rows.items()}


def parameter_count(model: nn.Module) -> int:
    """The model's parameters (a tensor shared by two layers counts once, as `parameters()` yields it)."""
    return sum(p.numel() for p in model.parameters())


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda" and torch.cuda.is_available():
        torch.cuda.synchronize(device)


def median_ms(forward: Callable[[], Any], *, n_batches: int, device: torch.device) -> float:
    """Median wall time of `forward()` in milliseconds: `n_batches` untimed calls, then as many timed."""
    for _ in range(n_batches):
        forward()
    times_s = []
    for _ in range(n_batches):
        _synchronize(device)
        start = time.perf_counter()
        forward()
        _synchronize(device)
        times_s.append(time.perf_counter() - start)
    return float(np.median(times_s)) * 1e3


def measure(model: nn.Module, forward: Callable[[nn.Module], Any], *, n_batches: int,
            device: torch.device) -> dict[str, float | int]:
    """`latency_ms` of `forward(model)` (one pass over the prepared batch) and the model's `parameters`.

    The model runs in eval mode without gradients, as deployed; each module's mode is put back
    afterwards, so a loop in the middle of training goes on as it was.
    """
    modes = {module: module.training for module in model.modules()}
    model.eval()
    try:
        with torch.no_grad():
            latency_ms = median_ms(lambda: forward(model), n_batches=max(1, n_batches), device=device)
    finally:
        for module, training in modes.items():
            module.training = training
    return {"latency_ms": latency_ms, "parameters": parameter_count(model)}


def deployed_inputs(workload: Trainable, meta: dict, rows: Batch) -> Batch:
    """The columns an exported model takes (`model_inputs(meta)`, what export traces `predict`
    on); every column where the workload does not name them."""
    model_inputs = getattr(workload, "model_inputs", None)
    return {name: rows[name] for name in model_inputs(meta)} if callable(model_inputs) else rows


def of_workload(workload: Trainable, model: nn.Module, rows: Batch, cfg: TrainingConfig, *, meta: dict,
                device: torch.device) -> dict[str, float | int]:
    """The built-in loop's measurement: `predict(model, batch)` on `latency_batch_size` rows of
    the validation split, the columns an export feeds it."""
    batch = batch_of(deployed_inputs(workload, meta, rows), cfg.latency_batch_size, device)
    return measure(model, lambda m: workload.predict(m, batch), n_batches=cfg.latency_batches, device=device)


def measure_inputs(model: nn.Module, inputs: Inputs, *, n_rows: int, n_batches: int,
                   device: torch.device) -> dict[str, float | int]:
    """An own loop's measurement: `model` called on `n_rows` rows of `inputs` as it takes them
    (`model(inputs)`, `model(*inputs)` or `model(**inputs)`)."""
    if isinstance(inputs, Mapping):
        batch = batch_of(dict(inputs), n_rows, device)
        return measure(model, lambda m: m(**batch), n_batches=n_batches, device=device)
    tensors = (inputs,) if isinstance(inputs, torch.Tensor) else tuple(inputs)
    batch = batch_of({str(i): t for i, t in enumerate(tensors)}, n_rows, device)
    return measure(model, lambda m: m(*batch.values()), n_batches=n_batches, device=device)
