"""A workload's kind is decided once, from what its module defines, and each kind checks its own
contract, one line per problem."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from raysweep.trainables import KINDS, kind_of, kind_problems
from raysweep.workloads import WORKLOADS, WorkloadError, load_workload

OWN_ESTIMATOR = '''
from dataclasses import dataclass
from raysweep.workloads import WORKLOADS

TASK = None
METRICS = {"val_loss": "min", "val_auc": "max"}
DATA = WORKLOADS["tabular"].DATA

@dataclass(frozen=True)
class Config:
    epochs: int = 3
    seed: int = 0
    depth: int = 2

def fit_trial(cfg, train, val, report, *, meta, threads, resume=None):
    pass

def predict(model, family, columns, meta):
    return None

def compute_metrics(outputs, labels, meta):
    return {"val_loss": 0.0, "val_auc": 0.5}

def model_inputs(meta):
    return ["features"]
'''


def test_each_registered_workload_has_the_kind_its_functions_say():
    assert {name: kind_of(w).name for name, w in WORKLOADS.items()} == {
        "glideator": "loop", "trajectory": "loop", "tabular": "loop", "families": "families"}


def test_a_users_estimator_workload_keeps_the_families_contract(tmp_path):
    (tmp_path / "mine.py").write_text(OWN_ESTIMATOR)
    module = load_workload(str(tmp_path / "mine.py"))
    assert kind_of(module) is KINDS["families"] and not KINDS["families"].phases and KINDS["families"].ensembles


def test_each_kind_names_what_its_module_lacks():
    own = SimpleNamespace(train=lambda cfg, data: None, Config=dict, METRICS={"val_loss": "min"})
    assert kind_of(own) is KINDS["own_loop"]
    assert kind_problems(own, "mine.py") == [
        "mine.py: train takes (cfg, data, session), found (cfg, data)",
        "mine.py: Config must be a dataclass extending raysweep.training.config.TrainingConfig (its defaults are a "
        "runnable baseline)"]
    fitted = SimpleNamespace(fit_trial=lambda cfg, train, val, report: None)
    assert kind_problems(fitted, "mine.py")[:2] == ["mine.py: predict(model, family, columns, meta) is missing",
                                                   "mine.py: compute_metrics(outputs, labels, meta) is missing"]
    assert kind_problems(SimpleNamespace(KIND="trees"), "mine.py") == [
        "mine.py: KIND must be one of loop, families, own_loop, got 'trees'"]


def test_a_workload_off_its_kinds_contract_is_refused_at_load(tmp_path):
    (tmp_path / "broken.py").write_text(OWN_ESTIMATOR.replace("def predict(model, family, columns, meta)",
                                                              "def predict(model, columns)"))
    with pytest.raises(WorkloadError, match=r"predict takes \(model, family, columns, meta\), found \(model, columns\)"):
        load_workload(str(tmp_path / "broken.py"))
