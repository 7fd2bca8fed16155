"""Any optimiser in the built-in loop, and a workload's own; a paused trial resumes each exactly."""

from __future__ import annotations

import copy

import pytest
import torch

from raysweep import spec
from raysweep.training import loop, optimizers
from raysweep.training.config import TrainingConfig as Cfg

CPU = torch.device("cpu")


class Small:
    """A two-layer net on a fixed regression: enough state (moments, momentum) to lose."""

    @staticmethod
    def build_model(cfg, meta):
        return torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))

    @staticmethod
    def compute_loss(model, batch, cfg):
        pred = model(batch["x"]).squeeze(1)
        return torch.nn.functional.mse_loss(pred, batch["y"]), pred

    @staticmethod
    def predict(model, batch):
        return model(batch["x"]).squeeze(1)

    @staticmethod
    def compute_metrics(pred, labels, meta):
        return {"val_loss": float(((pred - labels) ** 2).mean())}

    METRICS = {"val_loss": "min", "train_loss": "min"}


class WithGroups(Small):
    """Its own optimiser: no weight decay on biases, as a user's script would set it."""

    @staticmethod
    def configure_optimizer(model, cfg):
        decay = [p for n, p in model.named_parameters() if not n.endswith("bias")]
        rest = [p for n, p in model.named_parameters() if n.endswith("bias")]
        return torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": rest, "weight_decay": 0.0}],
                                 lr=cfg.learning_rate)


def data() -> loop.EpochData:
    g = torch.Generator().manual_seed(3)
    x = torch.randn(128, 4, generator=g)
    y = torch.sin(x @ torch.tensor([1.0, -1.0, 0.5, 2.0]))
    return loop.EpochData(train=lambda epoch: [{"x": x[i:i + 16], "y": y[i:i + 16]} for i in range(0, 128, 16)],
                          val=lambda: [{"x": x, "labels": y}])


def run(workload, cfg, resume=None):
    trainee = loop.build(workload, cfg, {}, device=CPU, resume=resume)
    reports = []
    loop.run_epochs(workload, cfg, trainee, data(), lambda m, f: reports.append((m, copy.deepcopy(f))), device=CPU)
    return trainee, reports


CASES = {
    "adam": Cfg(epochs=4, learning_rate=0.01, optimizer="adam", beta1=0.8, beta2=0.99),
    "adamw": Cfg(epochs=4, learning_rate=0.01, optimizer="adamw", weight_decay=0.01),
    "sgd": Cfg(epochs=4, learning_rate=0.05, optimizer="sgd", momentum=0.9, nesterov=True),
    "rmsprop": Cfg(epochs=4, learning_rate=0.005, optimizer="rmsprop", momentum=0.5, rmsprop_alpha=0.9),
}


@pytest.mark.parametrize("name", list(CASES))
def test_each_optimizer_trains_with_its_settings_and_resumes_exactly(name):
    cfg = CASES[name]
    trainee, straight = run(Small, cfg)
    assert type(trainee.optimizer).__name__.lower() == name
    group = trainee.optimizer.param_groups[0]
    for field in optimizers.READS[name]:
        value = getattr(cfg, field)
        found = {"beta1": lambda: group["betas"][0], "beta2": lambda: group["betas"][1],
                 "rmsprop_alpha": lambda: group["alpha"]}.get(field, lambda f=field: group[f])()
        assert found == value, field
    assert straight[-1][0]["train_loss"] < straight[0][0]["train_loss"], "it learns"
    torch.manual_seed(999)   # whatever the process did between the pause and the resume
    _, resumed = run(Small, cfg, resume=straight[1][1])   # paused after epoch 2
    assert [m["epoch"] for m, _ in resumed] == [3, 4]
    for (a, _), (b, _) in zip(resumed, straight[2:]):
        assert a["train_loss"] == b["train_loss"] and a["val_loss"] == b["val_loss"]


def test_a_workloads_own_optimizer_keeps_its_parameter_groups_across_a_resume():
    cfg = Cfg(epochs=4, learning_rate=0.01)
    trainee, straight = run(WithGroups, cfg)
    assert [g["weight_decay"] for g in trainee.optimizer.param_groups] == [0.1, 0.0]
    _, resumed = run(WithGroups, cfg, resume=straight[1][1])
    assert [m["train_loss"] for m, _ in resumed] == [m["train_loss"] for m, _ in straight[2:]]


def test_a_workload_optimizer_that_is_none_is_named():
    class Broken(Small):
        @staticmethod
        def configure_optimizer(model, cfg):
            return None

    with pytest.raises(TypeError, match="configure_optimizer returned a NoneType; it must return a torch.optim.Optimizer"):
        run(Broken, Cfg(epochs=1))


def test_the_spec_takes_the_optimizer_and_its_settings(raw_spec):
    raw_spec["fixed"].update(optimizer="sgd", momentum=0.9, nesterov=True)
    raw_spec["params"]["optimizer"] = {"type": "choice", "values": ["adam", "adamw", "sgd"]}
    del raw_spec["fixed"]["optimizer"]
    assert spec.validate(raw_spec).params[-1].values == ("adam", "adamw", "sgd")
    raw_spec["params"]["optimizer"] = {"type": "choice", "values": ["adam", "lion"]}
    with pytest.raises(spec.SpecError, match="lion"):
        spec.validate(raw_spec)
    del raw_spec["params"]["optimizer"]
    raw_spec["fixed"].update(optimizer="sgd", momentum=0.0, nesterov=True)
    with pytest.raises(spec.SpecError, match="fixed.nesterov: Nesterov momentum needs momentum > 0"):
        spec.validate(raw_spec)
    raw_spec["fixed"].pop("optimizer")   # searched, sgd among the values: the same refusal
    raw_spec["params"]["optimizer"] = {"type": "choice", "values": ["adam", "sgd"]}
    with pytest.raises(spec.SpecError, match="fixed.nesterov: Nesterov momentum needs momentum > 0"):
        spec.validate(raw_spec)
    raw_spec["fixed"].pop("momentum")
    raw_spec["params"]["momentum"] = {"type": "uniform", "low": 0.5, "high": 0.95}
    spec.validate(raw_spec)   # every momentum the search gives is above 0
