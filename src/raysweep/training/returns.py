"""What a workload's functions return, checked once per trial on its first batch.

A workload is the user's code, and a function that returns the wrong thing used to fail far
from it: a loss of shape [64] in torch's backward, a metric left out in Tune's result check (a
traceback, and the whole sweep down), outputs of the wrong length in a concatenation. The loop
checks each function's first return against the contract (training/contract.py) and raises a
`WorkloadReturnError` that names the function, what it returned and what was expected; the trial
fails with that line, and `raysweep run` groups the trials that failed alike.

Only the first batch of a trial is checked (`Checked`), so the cost is nil after it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from numbers import Real

import torch
from torch import nn

from raysweep.training.metrics import METRICS_BY_TASK, MODES


class WorkloadReturnError(TypeError):
    """A workload function returned what the contract does not allow; its message says what."""


@dataclass
class Checked:
    """Which of a trial's workload functions have had their first return checked."""

    done: set[str] = field(default_factory=set)

    def first(self, name: str) -> bool:
        """True the first time `name` is asked for (then it is marked checked)."""
        if name in self.done:
            return False
        self.done.add(name)
        return True


def _shown(value) -> str:
    if isinstance(value, torch.Tensor):
        return f"a tensor of shape {list(value.shape)}"
    return f"a {type(value).__name__}"


def model(built) -> nn.Module:
    if not isinstance(built, nn.Module):
        raise WorkloadReturnError(f"build_model returned {_shown(built)}; it must return a torch.nn.Module")
    return built


def loss(returned) -> torch.Tensor:
    """The loss of `compute_loss`'s (loss, outputs) pair, once checked."""
    if not isinstance(returned, (tuple, list)) or len(returned) != 2:
        raise WorkloadReturnError(f"compute_loss returned {_shown(returned)}; it must return a pair (loss, outputs)")
    value = returned[0]
    if not isinstance(value, torch.Tensor) or value.dim() != 0:
        raise WorkloadReturnError(f"compute_loss returned a loss that is {_shown(value)}; it must be a scalar tensor "
                                  "(reduce it, e.g. with .mean())")
    if not value.requires_grad:
        raise WorkloadReturnError("compute_loss returned a loss that does not depend on the model's parameters "
                                  "(requires_grad is False); compute it from the model's outputs")
    return value


def outputs(returned, rows: int) -> torch.Tensor:
    """`predict`'s outputs for a batch of `rows` rows, once checked."""
    if not isinstance(returned, torch.Tensor):
        raise WorkloadReturnError(f"predict returned {_shown(returned)}; it must return a tensor with one row per "
                                  f"row of the batch ({rows})")
    if returned.dim() == 0 or returned.shape[0] != rows:
        raise WorkloadReturnError(f"predict returned a tensor of shape {list(returned.shape)} for a batch of {rows} "
                                  f"rows; its first dimension must be the batch ({rows})")
    return returned


# What the loop reports itself beside compute_metrics' metrics (a workload's METRICS may list them).
LOOP_METRICS = ("train_loss", "lr", "epoch", "restored_best_epoch", "latency_ms", "throughput_rows_per_s")


def expected(declared: dict[str, str], task: str | None, loop_adds: tuple[str, ...] = LOOP_METRICS) -> list[str]:
    """The metrics compute_metrics must return: those METRICS declares, less what the loop adds,
    and, on a table whose task the data names (a workload for any task), less other tasks' own."""
    others = set(MODES) - set(METRICS_BY_TASK.get(task, MODES)) if task else set()
    return [name for name in declared if name not in loop_adds and name not in others]


def metrics(returned, declared: dict[str, str], task: str | None = None, *, source: str = "compute_metrics returned",
            loop_adds: tuple[str, ...] = LOOP_METRICS) -> dict:
    """`compute_metrics`' mapping (or what an own loop reports: `source`), once checked: every
    metric METRICS declares (`expected`), each a number."""
    wanted = expected(declared, task, loop_adds)
    verb = source.split()[-1]
    if not isinstance(returned, dict):
        raise WorkloadReturnError(f"{source} {_shown(returned)}; it must be a mapping of metric names to numbers "
                                  f"({', '.join(wanted)})")
    missing = [name for name in wanted if name not in returned]
    if missing:
        plural = "s" if len(missing) > 1 else ""
        raise WorkloadReturnError(
            f"{source} no {', '.join(repr(m) for m in missing)} (it {verb} "
            f"{', '.join(map(str, returned)) or 'nothing'}); METRICS declares the metric{plural} {', '.join(missing)}")
    odd = {k: v for k, v in returned.items() if isinstance(v, bool) or not isinstance(v, (Real, torch.Tensor))
           or (isinstance(v, torch.Tensor) and v.numel() != 1)}
    if odd:
        shown = ", ".join(f"{k}={v!r}" if not isinstance(v, torch.Tensor) else f"{k}={_shown(v)}" for k, v in odd.items())
        raise WorkloadReturnError(f"{source} {shown}; each metric must be a number")
    return as_floats(returned)


def as_floats(metrics: dict) -> dict:
    """Metrics as plain numbers (Tune refuses tensors in a report); Python ints stay ints."""
    return {k: v if isinstance(v, int) else float(v) for k, v in metrics.items()}
