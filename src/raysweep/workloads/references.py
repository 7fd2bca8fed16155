"""A spec's `workload:` as a module: a registered name, a module path or a Python file.

    workload: glideator                    # raysweep's own (registry.WORKLOADS)
    workload: my_project.models.brake      # a module on the Python path
    workload: ./brake_coast.py             # a file, relative to the spec

A user's module is imported once per process and checked against the contract
(`contract.Workload`): every name it must define, each function's parameters, the Config's base
class, the metrics' directions. What does not fit comes back as one line each, naming the file
and the fix, so `raysweep validate` can list them; a module that fails to import is reported with
its own error and line. A file reference is made absolute when the spec is validated, so trials
and later commands load the same file.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import importlib.util
import inspect
import re
import sys
import traceback
from pathlib import Path
from types import ModuleType

from raysweep.checks import did_you_mean
from raysweep.errors import UserError
from raysweep.training.config import TrainingConfig
from raysweep.workloads.contract import TASKS, DataCommand, Workload
from raysweep.workloads.registry import WORKLOADS

FUNCTIONS = ("build_model", "compute_loss", "predict", "compute_metrics", "model_inputs")


class WorkloadError(UserError):
    """A workload reference that cannot be loaded or does not keep the contract."""


def is_file(reference: str) -> bool:
    return reference.endswith(".py") or "/" in reference


def absolute(reference: str, base_dir: Path) -> str:
    """A file reference made absolute against `base_dir` (the spec's folder); others as they are."""
    return str((base_dir / reference).resolve()) if is_file(reference) else reference


def label(reference: str) -> str:
    """How messages name a workload: a file by its name, a module by its path."""
    return Path(reference).name if is_file(reference) else reference


def check_reference(reference: str) -> tuple[ModuleType | None, list[str]]:
    """The workload module for `reference` and what is wrong with it (nothing, where it loads)."""
    if reference in WORKLOADS:
        return WORKLOADS[reference], []
    if not is_file(reference) and "." not in reference:
        return None, [f"unknown workload {reference!r}.{did_you_mean(reference, WORKLOADS)} Known: "
                      f"{', '.join(WORKLOADS)}; or name your own module (my_project.models.brake) or file (./brake.py)."]
    try:
        module = _import(reference)
    except WorkloadError as exc:
        return None, exc.problems
    problems = contract_problems(module, label(reference))
    return (None, problems) if problems else (module, [])


@functools.lru_cache(maxsize=None)
def load_workload(reference: str) -> Workload:
    """The workload module for a validated spec's reference (cached per process).

    Raises:
        WorkloadError: it no longer loads or keeps the contract (the file changed since validation).
    """
    module, problems = check_reference(reference)
    if problems:
        raise WorkloadError([f"workload: {p}" for p in problems])
    return module


def _import(reference: str) -> ModuleType:
    if not is_file(reference):
        try:
            return importlib.import_module(reference)
        except ModuleNotFoundError as exc:
            raise WorkloadError([f"{reference}: no such module ({exc}); is its package installed, or on "
                                 "PYTHONPATH?"]) from None
        except Exception as exc:  # noqa: BLE001 - the user's module failed as it imported
            raise WorkloadError([_import_failure(reference, exc)]) from None
    path = Path(reference)
    if not path.is_file():
        raise WorkloadError([f"{reference}: no such file; give the workload's path relative to the spec"])
    name = "raysweep_workload_" + re.sub(r"\W", "_", path.stem)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module   # dataclasses and pickling look modules up by name
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # noqa: BLE001 - the user's module failed as it imported
        del sys.modules[name]
        raise WorkloadError([_import_failure(path.name, exc, path)]) from None
    return module


def _import_failure(shown: str, exc: Exception, path: Path | None = None) -> str:
    """`brake.py: could not be imported: NameError: name 'x' is not defined (line 12)`."""
    where = ""
    frames = traceback.extract_tb(exc.__traceback__)
    mine = [f for f in frames if path is not None and Path(f.filename) == path] or frames[-1:]
    if mine:
        where = f" (line {mine[-1].lineno})"
    return f"{shown}: could not be imported: {type(exc).__name__}: {exc}{where}"


def _parameters(function) -> list[str]:
    return [p.name for p in inspect.signature(function).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]


def contract_problems(module: ModuleType, shown: str) -> list[str]:
    """What `module` lacks or has in the wrong shape, one line each (empty: it keeps the contract)."""
    problems = []
    for name in FUNCTIONS:
        expected = [p for p in _parameters(getattr(Workload, name)) if p != "self"]
        function = getattr(module, name, None)
        if function is None:
            problems.append(f"{shown}: {name}({', '.join(expected)}) is missing")
        elif not callable(function):
            problems.append(f"{shown}: {name} must be a function taking ({', '.join(expected)})")
        elif len(_parameters(function)) != len(expected):
            problems.append(f"{shown}: {name} takes ({', '.join(expected)}), found ({', '.join(_parameters(function))})")
    config = getattr(module, "Config", None)
    if not (isinstance(config, type) and dataclasses.is_dataclass(config) and issubclass(config, TrainingConfig)):
        problems.append(f"{shown}: Config must be a dataclass extending raysweep.training.config.TrainingConfig "
                        "(its defaults are a runnable baseline)")
    metrics = getattr(module, "METRICS", None)
    if not isinstance(metrics, dict) or metrics.get("val_loss") != "min" or \
            not set(metrics.values()) <= {"min", "max"}:
        problems.append(f"{shown}: METRICS must map each reported metric to 'min' or 'max', "
                        "with val_loss: 'min' among them")
    if getattr(module, "TASK", "missing") not in TASKS + (None,):
        problems.append(f"{shown}: TASK must be one of {', '.join(TASKS)} (or None: the dataset's meta.json names it)")
    if not isinstance(getattr(module, "DATA", None), DataCommand):
        problems.append(f"{shown}: DATA must be a raysweep.workloads.DataCommand: the command that writes its "
                        "dataset (shards plus meta.json)")
    return problems
