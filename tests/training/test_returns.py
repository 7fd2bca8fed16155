"""A workload function that returns the wrong thing is named, with what it returned and what was due."""

from __future__ import annotations

import math

import pytest
import torch

from raysweep.training import returns
from raysweep.training.returns import WorkloadReturnError

DECLARED = {"val_loss": "min", "train_loss": "min", "val_acc": "max", "latency_ms": "min"}


def test_a_first_return_is_checked_once():
    checked = returns.Checked()
    assert checked.first("predict") and not checked.first("predict") and checked.first("compute_loss")


@pytest.mark.parametrize("built, message", [
    ([torch.nn.Linear(2, 1)], "build_model returned a list; it must return a torch.nn.Module"),
    (None, "build_model returned a NoneType"),
])
def test_build_model(built, message):
    with pytest.raises(WorkloadReturnError, match=message):
        returns.model(built)


def test_compute_loss():
    weight = torch.ones(3, requires_grad=True)
    outputs = torch.ones(4, 3) * weight
    assert returns.loss((outputs.mean(), outputs)) is not None
    with pytest.raises(WorkloadReturnError, match=r"compute_loss returned a tensor of shape \[\]; it must return a pair"):
        returns.loss(outputs.mean())
    with pytest.raises(WorkloadReturnError, match=r"a loss that is a tensor of shape \[4\]; it must be a scalar tensor "
                                                  r"\(reduce it, e.g. with .mean\(\)\)"):
        returns.loss((outputs.sum(dim=1), outputs))
    with pytest.raises(WorkloadReturnError, match="a loss that is a float"):
        returns.loss((0.5, outputs))
    with pytest.raises(WorkloadReturnError, match="does not depend on the model's parameters"):
        returns.loss((torch.tensor(0.5), outputs))


def test_predict():
    returns.outputs(torch.zeros(8, 2), 8)
    with pytest.raises(WorkloadReturnError, match=r"predict returned a tensor of shape \[2, 8\] for a batch of 8 rows; "
                                                  r"its first dimension must be the batch \(8\)"):
        returns.outputs(torch.zeros(2, 8), 8)
    with pytest.raises(WorkloadReturnError, match="predict returned a tuple"):
        returns.outputs((torch.zeros(8, 2),), 8)


def test_compute_metrics():
    assert returns.metrics({"val_loss": 0.5, "val_acc": torch.tensor(0.9)}, DECLARED) == {"val_loss": 0.5, "val_acc":
                                                                                          pytest.approx(0.9)}
    with pytest.raises(WorkloadReturnError) as err:
        returns.metrics({"val_loss": 0.5, "val_accuracy": 0.9}, DECLARED)
    assert str(err.value) == ("compute_metrics returned no 'val_acc' (it returned val_loss, val_accuracy); "
                              "METRICS declares the metric val_acc")
    with pytest.raises(WorkloadReturnError, match=r"compute_metrics returned val_acc=None; each metric must be a number"):
        returns.metrics({"val_loss": 0.5, "val_acc": None}, DECLARED)
    with pytest.raises(WorkloadReturnError, match="compute_metrics returned a list; it must be a mapping of metric"):
        returns.metrics([0.5], DECLARED)
    # NaN is a number: a metric the data leaves undefined (datasets.teachability says why)
    assert math.isnan(returns.metrics({"val_loss": 0.5, "val_acc": math.nan}, DECLARED)["val_acc"])


def test_a_workload_for_any_task_owes_only_its_tables_metrics():
    declared = {"val_loss": "min", "val_auc": "max", "val_r2": "max", "train_loss": "min"}
    assert returns.expected(declared, "regression") == ["val_loss", "val_r2"]
    assert returns.expected(declared, "binary") == ["val_loss", "val_auc"]
    assert returns.expected(declared, None) == ["val_loss", "val_auc", "val_r2"]
