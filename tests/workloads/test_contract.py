"""Every registered workload keeps the contract, and a new one is one module plus one registry line.

The new one is the README's minimal workload (examples/linear/linear.py, shown whole in the README).
"""

from __future__ import annotations

import importlib.util
import inspect
import re
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import torch

from raysweep import cli, spec
from raysweep.cli.parser import build_parser
from raysweep.datasets import batching, shards
from raysweep.trainables import KINDS, kind_of
from raysweep.training import loop
from raysweep.training.config import TrainingConfig
from raysweep.training.contract import Trainable
from raysweep.workloads import WORKLOADS, Workload, config_from_trial, task_of
from raysweep.workloads.contract import TASKS

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", [n for n, w in WORKLOADS.items() if kind_of(w) is KINDS["loop"]])
def test_each_workload_keeps_the_contract(name):
    workload = WORKLOADS[name]
    assert isinstance(workload, Workload) and isinstance(workload, Trainable)
    for member in ("build_model", "compute_loss", "predict", "compute_metrics", "model_inputs"):
        expected = [p for p in inspect.signature(getattr(Workload, member)).parameters if p != "self"]
        found = list(inspect.signature(getattr(workload, member)).parameters)
        assert len(found) == len(expected), f"{name}.{member} takes {found}, the contract {expected}"
    assert issubclass(workload.Config, TrainingConfig) and workload.Config().epochs >= 1
    assert workload.METRICS.get("val_loss") == "min" and set(workload.METRICS.values()) <= {"min", "max"}
    assert workload.TASK in TASKS + (None,)
    assert workload.DATA.example("DIR").startswith(f"raysweep data {workload.DATA.name} ")


@pytest.mark.parametrize("name", [n for n, w in WORKLOADS.items() if kind_of(w) is KINDS["families"]])
def test_each_model_family_workload_keeps_its_contract(name):
    """A workload of model families fits with `fit_trial`, predicts and scores like the others,
    and trains on the data of the workload it names (`TRAINS_ON`)."""
    workload = WORKLOADS[name]
    for member, parameters in (("fit_trial", 4), ("predict", 4), ("compute_metrics", 3), ("model_inputs", 1)):
        found = [p for p in inspect.signature(getattr(workload, member)).parameters.values()
                 if p.kind == p.POSITIONAL_OR_KEYWORD]
        assert len(found) == parameters, f"{name}.{member} takes {found}"
    assert workload.Config().epochs >= 1 and workload.METRICS.get("val_loss") == "min"
    assert workload.DATA is WORKLOADS[workload.TRAINS_ON].DATA


@pytest.mark.parametrize("name", list(WORKLOADS))
def test_each_registered_workload_keeps_its_kinds_contract(name):
    """Each built-in workload passes the contract it is registered under (the families workload
    could not, when the loop's contract was the only one)."""
    assert KINDS[kind_of(WORKLOADS[name]).name].problems(WORKLOADS[name], name) == []


def test_data_hints_name_the_command_that_writes_the_data():
    assert WORKLOADS["glideator"].DATA.example("d") == "raysweep data glideator --out d"
    assert WORKLOADS["tabular"].DATA.example("d") == (
        "raysweep data import FILE --target COL --task regression|binary|multiclass|multilabel --out d")


def test_data_commands_come_from_the_registry():
    names = {w.DATA.name for w in WORKLOADS.values()}
    own = [w for w in WORKLOADS.values() if not getattr(w, "TRAINS_ON", None)]
    assert len(names) == len(own), "each workload has its own `raysweep data NAME`, or trains on another's data"
    commands = build_parser()._subparsers._group_actions[0].choices
    assert set(commands["data"]._subparsers._group_actions[0].choices) == names | {"describe"}   # shards in place


EXAMPLE = ROOT / "examples" / "linear" / "linear.py"


def test_the_readme_shows_the_minimal_workload_whole():
    code = EXAMPLE.read_text()
    assert len(code.splitlines()) < 40, "the README promises a workload under 40 lines"
    text = (ROOT / "README.md").read_text()
    shown = re.search(r"```python\n# examples/linear/linear\.py\n(.*?)```", text, re.S)
    assert shown and shown.group(1) == code, "README's block and examples/linear/linear.py must match"


def readme_workload(tmp_path: Path):
    """The README's minimal workload, imported as a registered workload would be."""
    path = tmp_path / "linear.py"
    path.write_text(EXAMPLE.read_text())
    module_spec = importlib.util.spec_from_file_location("linear", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


def test_the_readme_workload_is_one_module_and_one_registry_line(tmp_path, monkeypatch, capsys):
    linear = readme_workload(tmp_path)
    monkeypatch.setitem(WORKLOADS, "linear", linear)   # the one registry line
    assert isinstance(linear, Workload)

    data_dir = tmp_path / "data"
    assert cli.main(["data", "linear", "--out", str(data_dir)]) == 0
    assert "wrote linear data" in capsys.readouterr().out
    meta = shards.read_meta(data_dir)
    assert task_of(linear, meta) == "regression"

    raw = {"name": "lin", "workload": "linear", "data": {"path": str(data_dir)}, "metric": "val_loss", "mode": "min",
           "fixed": {"epochs": 8, "batch_size": 64, "learning_rate": 0.01},
           "params": {"hidden_units": {"type": "choice", "values": [16, 32]}}}
    s = spec.validate(raw)
    assert s.workload == "linear" and s.epochs == 8
    with pytest.raises(spec.SpecError, match="linear does not report 'val_auc'"):
        spec.validate({**raw, "metric": "val_auc"})

    # It trains on the shared loop as every workload does.
    cfg = config_from_trial(linear, {**s.fixed, "hidden_units": 16}, s.params)

    def batches(split: str, size: int):
        rows = batching.arrow_to_torch(pq.read_table(shards.shard_paths(data_dir, split, "parquet")))
        n = len(rows["labels"])
        return [{k: v[i:i + size] for k, v in rows.items()} for i in range(0, n, size)]

    trainee = loop.build(linear, cfg, meta, device=torch.device("cpu"))
    reports = []
    data = loop.EpochData(train=lambda epoch: batches("train", cfg.batch_size), val=lambda: batches("val", 4096))
    loop.run_epochs(linear, cfg, trainee, data, lambda metrics, files: reports.append(metrics),
                    device=torch.device("cpu"))
    assert len(reports) == 8 and reports[-1]["val_loss"] < 0.1
