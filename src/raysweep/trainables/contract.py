"""A workload kind: how a trial of a workload trains, resumes, is exported and scored.

raysweep takes three kinds of workload module, told apart once, when the module is loaded
(`trainables.kind_of`), and never asked again: every step that differs by kind calls the kind.

| kind | the module defines | a trial runs | export writes |
|---|---|---|---|
| `loop` | build_model, compute_loss, predict, compute_metrics | raysweep's loop (training/loop.py) | TorchScript and/or ONNX |
| `families` | fit_trial, predict, compute_metrics | fits in rounds (raysweep.estimators) | the library's own file |
| `own_loop` | train(cfg, data, session) | the user's loop, reporting through a session | TorchScript and/or ONNX, or the state |

A kind is a `Kind`: what it supports (phases, executors, ensembles), its contract (`problems`),
and the steps that differ (`run`, `parameters`, `best_checkpoint`, `load_predictor`,
`export`). What every workload shares (METRICS, TASK, DATA, model_inputs) is checked by
workloads/references.py.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any, Callable, Protocol

import numpy as np

from raysweep.trainables.session import Columns, Session

PHASES = ("lr_find", "io_search")   # the phases beside `run`, which need raysweep's own loop
Predict = Callable[[Columns], np.ndarray]


class Kind(Protocol):
    name: str                   # "loop" | "families" | "own_loop"
    label: str                  # in messages: "raysweep's PyTorch loop"
    phases: frozenset[str]      # of PHASES
    executors: frozenset[str]   # "in_trial", "torch_trainer"
    gpus: bool                  # its trials can train on a GPU
    reads_its_own_data: bool    # may take a data.path raysweep does not read (no meta.json there)
    ensembles: bool             # its models' probabilities average (raysweep ensemble)

    def problems(self, module: Any, shown: str) -> list[str]:
        """What the module lacks or has in the wrong shape for this kind, one line each."""
        ...

    def run(self, module: Any, cfg: Any, session: Session) -> None:
        """Train one trial (from `session.resumed` where it is a restart), reporting each epoch."""
        ...

    def parameters(self, module: Any, cfg: Any, meta: dict) -> int | None:
        """The parameters of the config's model, or None where they cannot be told before
        training (runner/storage.py estimates the room its checkpoints need from them)."""
        ...

    def best_checkpoint(self, checkpoints: list[Path], metric: str, mode: str) -> Path:
        """Of a trial's kept checkpoints (oldest first), the one that holds its model at its best."""
        ...

    def load_predictor(self, module: Any, cfg: Any, meta: dict, checkpoint: Path) -> Predict:
        """The checkpoint's model as `predict(columns) -> outputs` (what compute_metrics takes)."""
        ...

    def probabilities(self, outputs: np.ndarray) -> np.ndarray:
        """A classifier's outputs as probabilities (a PyTorch model's are logits)."""
        ...

    def export(self, module: Any, cfg: Any, meta: dict, checkpoint: Path, to: Path, example: Columns, *,
               formats: tuple[str, ...] | None = None, check: Columns | None = None) -> dict:
        """Write the model at `checkpoint` into `to`, proven to predict what it predicted;
        returns the model card's entries for it (files, how to load, inputs, latency).

        `formats` are those asked for (`raysweep export --format`: "torchscript", "onnx"; None:
        the kind's own); an ONNX graph is checked on `check` (the val split). A kind that cannot
        write a format asked for raises ValueError before it writes anything."""
        ...


def signatures(protocol: type, names: tuple[str, ...]) -> dict[str, tuple[str, ...]]:
    """The positional parameters of a Protocol's functions, as a module must define them."""
    return {name: tuple(p for p in parameters(getattr(protocol, name)) if p != "self") for name in names}


def parameters(function) -> list[str]:
    return [p.name for p in inspect.signature(function).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]


def function_problems(module: Any, shown: str, functions: dict[str, tuple[str, ...]],
                      optional: dict[str, tuple[str, ...]] | None = None) -> list[str]:
    """Each function the module must define (or, `optional`, may) with its positional parameters."""
    problems = []
    for name, expected in {**functions, **(optional or {})}.items():
        function = getattr(module, name, None)
        if function is None:
            if name in functions:
                problems.append(f"{shown}: {name}({', '.join(expected)}) is missing")
        elif not callable(function):
            problems.append(f"{shown}: {name} must be a function taking ({', '.join(expected)})")
        elif len(parameters(function)) != len(expected):
            problems.append(f"{shown}: {name} takes ({', '.join(expected)}), found ({', '.join(parameters(function))})")
    return problems
