"""A spec's `workload:` as a module: a registered name, a module path or a Python file.

    workload: glideator                    # raysweep's own (registry.WORKLOADS)
    workload: my_project.models.brake      # a module on the Python path
    workload: ./brake_coast.py             # a file, relative to the spec

A user's module is imported once per process and checked against the contract
(`contract.Workload`): every name it must define, each function's parameters, the Config's base
class, the metrics' directions. What does not fit comes back as one line each, naming the file
and the fix, so `raysweep validate` can list them; a module that fails to import is reported with
its own error and line. A file reference is made absolute when the spec is validated, so trials
and later commands load the same file; its folder goes on the Python path first, as Python does
for a script, so the module can import the files beside it.

On a cluster the nodes lack the user's files. `shipment` names what Ray's runtime environment
must carry (`py_modules`): a file's folder, or a module's top-level package where it is not
installed. A trial on another node finds the shipped copy of a file through `SHIPPED_ENV`.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import importlib.util
import json
import os
import re
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from raysweep.checks import did_you_mean
from raysweep.errors import UserError
from raysweep.trainables import kind_problems
from raysweep.workloads.contract import COMMON_DATA_OPTIONS, RESERVED_DESTS, TASKS, DataCommand, Workload
from raysweep.workloads.registry import WORKLOADS

# Set in the trials' environment when a file reference's folder was shipped: {"reference": the
# absolute path the spec holds, "folder": the folder's name, "file": the file's name}.
SHIPPED_ENV = "RAYSWEEP_SHIPPED_WORKLOAD"
# Never worth shipping: bytecode caches, version control, virtual environments.
SHIPPING_EXCLUDES = ["__pycache__/", ".git/", ".venv/", "venv/", ".ipynb_checkpoints/"]


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


def shown_reference(reference: str) -> str:
    """A reference as a user types it in this folder: a file relative to it where it lies below."""
    if reference in WORKLOADS or not is_file(reference):
        return reference
    path = Path(reference).resolve()
    try:
        return "./" + str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def data_example(reference: str, path: str) -> str:
    """The `raysweep data ...` command line that writes a workload's dataset to `path`."""
    command = load_workload(reference).DATA
    return command.example(path, None if reference in WORKLOADS else shown_reference(reference))


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
    path = _shipped_copy(reference) or Path(reference)
    if not path.is_file():
        raise WorkloadError([f"{reference}: no such file (a spec names its workload's file relative to the spec's "
                             "folder; `raysweep data` relative to the current one)"])
    # One module per reference: two users' model.py files in one process must not replace each other.
    digest = hashlib.sha1(reference.encode()).hexdigest()[:8]
    name = "raysweep_workload_" + re.sub(r"\W", "_", path.stem) + "_" + digest
    if str(path.parent) not in sys.path:
        sys.path.insert(0, str(path.parent))   # the files beside it import as they would from a script
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module   # dataclasses and pickling look modules up by name
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # noqa: BLE001 - the user's module failed as it imported
        del sys.modules[name]
        raise WorkloadError([_import_failure(path.name, exc, path)]) from None
    return module


@dataclass(frozen=True)
class Shipment:
    """What of a user's workload Ray's runtime environment carries to every node."""

    py_modules: tuple[str, ...]    # local folders (shipped with their contents) or single files
    env_vars: dict[str, str]

    def runtime_env(self, keep_out: tuple[str, ...] = ()) -> dict:
        """Ray's `py_modules`, `env_vars` and `excludes`; the local paths in `keep_out` (a
        dataset, a results folder) are excluded where they lie inside a shipped folder."""
        excludes = list(SHIPPING_EXCLUDES)
        for folder in map(Path, self.py_modules):
            for path in keep_out:
                inside = Path(path).resolve()
                if "://" not in str(path) and inside.is_relative_to(folder) and inside != folder:
                    excludes.append(f"/{inside.relative_to(folder)}/")
        return {"py_modules": list(self.py_modules), "env_vars": dict(self.env_vars), "excludes": excludes}


def shipment(reference: str) -> Shipment | None:
    """The code a cluster's nodes need for `reference`; None where they have it already.

    A file ships with the folder it lives in (the modules and files beside it come along; list
    big files in a .gitignore or .rayignore there to leave them behind). A module ships its
    top-level package, unless that is installed in site-packages: then the cluster's setup
    commands must install it too, as they install raysweep. A shipped folder is a top-level
    package of its name on the workers' path, so a folder named like a package the trials
    import (`datasets`, `torch`) would shadow it: name it after the project.

    Raises:
        WorkloadError: a file at the top of the filesystem (its folder is everything).
    """
    if reference in WORKLOADS or reference.split(".")[0] == "raysweep":
        return None   # raysweep's own: the nodes' install has it (an editable one must not shadow it)
    if is_file(reference):
        path = Path(reference)
        if path.parent == Path(path.anchor):
            raise WorkloadError([f"{reference}: a workload at the top of the filesystem would ship all of it; "
                                 "move it into a folder of its own"])
        env = {SHIPPED_ENV: json.dumps({"reference": reference, "folder": path.parent.name, "file": path.name})}
        return Shipment((str(path.parent),), env)
    found = importlib.util.find_spec(reference.split(".")[0])
    if found is None:
        return None
    where = Path(next(iter(found.submodule_search_locations or []), None) or found.origin)
    if {"site-packages", "dist-packages"} & set(where.parts):
        return None
    return Shipment((str(where),), {})


def _shipped_copy(reference: str) -> Path | None:
    """In a trial whose runtime environment shipped this file's folder: the copy Ray unpacked,
    the first folder of that name on the Python path (Ray puts its copies in front)."""
    shipped = json.loads(os.environ.get(SHIPPED_ENV) or "{}")
    if shipped.get("reference") != reference:
        return None
    for entry in sys.path:
        candidate = Path(entry or ".") / shipped["folder"] / shipped["file"]
        if candidate.is_file():
            return candidate
    return None


def _import_failure(shown: str, exc: Exception, path: Path | None = None) -> str:
    """`brake.py: could not be imported: NameError: name 'x' is not defined (line 12)`."""
    where = ""
    frames = traceback.extract_tb(exc.__traceback__)
    mine = [f for f in frames if path is not None and Path(f.filename) == path] or frames[-1:]
    if mine:
        where = f" (line {mine[-1].lineno})"
    return f"{shown}: could not be imported: {type(exc).__name__}: {exc}{where}"


def contract_problems(module: ModuleType, shown: str) -> list[str]:
    """What `module` lacks or has in the wrong shape, one line each (empty: it keeps the contract):
    its kind's functions and Config (trainables.kind_problems), then what every workload has."""
    problems = kind_problems(module, shown)
    metrics = getattr(module, "METRICS", None)
    if not isinstance(metrics, dict) or metrics.get("val_loss") != "min" or \
            not set(metrics.values()) <= {"min", "max"}:
        problems.append(f"{shown}: METRICS must map each reported metric to 'min' or 'max', "
                        "with val_loss: 'min' among them")
    if getattr(module, "TASK", "missing") not in TASKS + (None,):
        problems.append(f"{shown}: TASK must be one of {', '.join(TASKS)} (or None: the dataset's meta.json names it)")
    data = getattr(module, "DATA", None)
    if not isinstance(data, DataCommand):
        problems.append(f"{shown}: DATA must be a raysweep.workloads.DataCommand: the command that writes its "
                        "dataset (shards plus meta.json)")
    else:
        taken = {*COMMON_DATA_OPTIONS, *COMMON_DATA_OPTIONS.values(), *RESERVED_DESTS, "-h", "--help"}
        for option in data.options:
            clash = [x for x in (option.flag, option.dest) if x in taken]
            if clash:
                problems.append(f"{shown}: DATA option {option.flag} uses {clash[0]!r}, which every data command "
                                f"has already ({', '.join(COMMON_DATA_OPTIONS)}); name it otherwise")
    return problems
