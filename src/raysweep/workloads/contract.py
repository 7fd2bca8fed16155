"""The workload contract: what a workload module provides, and how its data is made.

A workload is a plain module. Besides the loop's `Trainable` contract (Config, METRICS,
build_model, compute_loss, predict, compute_metrics) it declares:

- `TASK`: "regression", "binary", "multiclass" or "multilabel"; None where the dataset's
  meta.json names it (the tabular workload trains on any imported table);
- `DATA`: the `raysweep data NAME` command that writes its dataset (shards plus meta.json);
- `model_inputs(meta)`: the batch columns `predict` reads, in the order an exported model takes them.

Optionally `CHOICES` (the values a string hyperparameter takes, checked by `validate`) and
`spec_problems(meta, fixed, params, metric)` (what a spec asks that its dataset cannot do).

How a workload's trials train is its kind's (raysweep.trainables): the loop's functions above,
model families' `fit_trial(cfg, train, val, report, *, meta, threads, resume)` (`families.py`,
whose `TRAINS_ON` names the workload whose data it reads), or an own loop's `train(cfg, data,
session)`; each kind checks its own functions and Config.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Protocol, runtime_checkable

from raysweep.datasets import location
from raysweep.training.contract import Trainable

TASKS = ("regression", "binary", "multiclass", "multilabel")
# The options every `raysweep data` command has (flag -> the writer's keyword), and the names
# argparse itself takes: a workload's own options must use others.
COMMON_DATA_OPTIONS = {"--out": "out_dir", "--seed": "seed", "--format": "fmt"}
RESERVED_DESTS = ("command", "generator", "data_command", "help")


@dataclass(frozen=True)
class Option:
    """One option of a `raysweep data NAME` command, passed to the writer as `dest=value`."""

    flag: str                       # "--sites", or a positional's name ("path")
    dest: str                       # the writer's keyword argument
    help: str = ""
    type: Callable[[str], Any] = str
    default: Any = None
    required: bool = False
    choices: tuple | None = None
    metavar: str | None = None

    @property
    def positional(self) -> bool:
        return not self.flag.startswith("-")


@dataclass(frozen=True)
class DataCommand:
    """`raysweep data NAME [options] --out DIR [--seed N] [--format parquet|webdataset]`.

    `write(out_dir=..., seed=..., fmt=..., **options)` writes the shards and meta.json and
    returns the meta; it takes only the keywords its signature names.
    """

    name: str
    help: str
    write: Callable[..., dict]
    options: tuple[Option, ...] = ()

    def example(self, path: str, invoked_as: str | None = None) -> str:
        """The command line that writes this dataset to `path` (for error messages' hints):
        positionals and required options, a repeatable metavar (`COL[,COL...]`) as its first item.
        A user's workload is invoked by its file or module (`invoked_as`), not by `name`.
        The command writes a local directory: for a URI, it says to upload that directory there."""
        if location.is_uri(path):
            return f"{self.example('DIR', invoked_as)}, then upload DIR to {path} (e.g. aws s3 sync DIR {path})"
        words = ["raysweep", "data", invoked_as or self.name]
        for o in self.options:
            shown = "|".join(map(str, o.choices)) if o.choices else (o.metavar or o.dest.upper()).split("[")[0]
            if o.positional:
                words.append(shown)
            elif o.required:
                words += [o.flag, shown]
        return " ".join(words + ["--out", str(path)])


@runtime_checkable
class Workload(Trainable, Protocol):
    """A workload module: the loop's contract plus its task, its data and its export inputs."""

    TASK: str | None
    DATA: DataCommand

    def model_inputs(self, meta: dict) -> list[str]:
        """The batch columns `predict` reads, in the order an exported model takes them."""
        ...


def task_of(workload: Workload, meta: dict) -> str:
    """The workload's task, or the dataset's where the workload leaves it to the data."""
    return workload.TASK or meta.get("task", "regression")

