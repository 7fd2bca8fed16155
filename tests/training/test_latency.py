"""Latency as a measured metric (training/latency.py): the measurement on a tiny model, the
built-in loop reporting latency_ms and parameters when `measure_latency` asks (every epoch or the
last) and never otherwise, and the helper an own loop calls (`session.measure_latency`)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from raysweep import spec
from raysweep.analysis import store
from raysweep.phases import sweep
from raysweep.trainables.own_loop import OwnSession
from raysweep.training import latency, loop, returns
from raysweep.training.config import TrainingConfig as Cfg
from raysweep.workloads import load_workload

CPU = torch.device("cpu")


class Counting(torch.nn.Module):
    """A linear layer (4 -> 3, plus a layer held in eval mode) that records every forward pass."""

    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(4, 3)
        self.frozen = torch.nn.BatchNorm1d(3).eval()
        self.calls: list[dict] = []

    def forward(self, x, scale=None):
        self.calls.append({"rows": len(x), "training": self.training, "grad": torch.is_grad_enabled()})
        out = self.frozen(self.linear(x))
        return out if scale is None else out * scale


# --- the measurement ------------------------------------------------------------------------------

def test_measure_times_warm_up_and_timed_passes_in_eval_without_gradients_and_counts_parameters():
    model = Counting().train()
    model.frozen.eval()
    measured = latency.measure(model, lambda m: m(torch.randn(2, 4)), n_batches=7, device=CPU)
    assert set(measured) == set(latency.METRICS)
    assert measured["latency_ms"] > 0
    assert measured["parameters"] == sum(p.numel() for p in model.parameters()) == 4 * 3 + 3 + 3 + 3
    assert len(model.calls) == 7 + 7, "warm-up passes, then as many timed ones"
    assert all(not c["training"] and not c["grad"] for c in model.calls), "eval mode, no gradients"
    assert model.training and not model.frozen.training, "each module's own mode is put back"


def test_measure_reports_the_median_in_milliseconds():
    delays_s = iter([0.0] * 3 + [0.002, 0.030, 0.002])   # 3 warm-up passes, then 3 timed: one hiccup

    def forward(model):
        time.sleep(next(delays_s))

    measured = latency.measure(torch.nn.Linear(2, 2), forward, n_batches=3, device=CPU)
    assert 2.0 <= measured["latency_ms"] < 25.0, "the median, in ms, shrugs off the hiccup"


def test_measure_puts_the_mode_back_when_the_forward_pass_fails():
    model = Counting().train()

    def failing(m):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        latency.measure(model, failing, n_batches=2, device=CPU)
    assert model.training


def test_batch_of_repeats_the_rows_where_the_split_holds_fewer():
    rows = {"x": torch.arange(3.0).unsqueeze(1)}
    assert latency.batch_of(rows, 7, CPU)["x"].squeeze(1).tolist() == [0, 1, 2, 0, 1, 2, 0]
    assert latency.batch_of(rows, 2, CPU)["x"].squeeze(1).tolist() == [0, 1]


def test_first_rows_keeps_rows_across_batches_and_hands_the_batches_on_unchanged():
    batches = [{"x": torch.full((2, 1), float(i))} for i in range(4)]
    kept = latency.FirstRows(3)
    assert list(kept.tap(batches)) == batches
    assert kept.rows()["x"].squeeze(1).tolist() == [0, 0, 1]
    list(kept.tap([{"x": torch.full((2, 1), 9.0)}]))
    assert kept.rows()["x"].squeeze(1).tolist() == [0, 0, 1], "the first pass's rows only"
    short = latency.FirstRows(10)
    list(short.tap(batches[:1]))
    list(short.tap(batches[1:]))
    assert len(short.rows()["x"]) == 2, "a split smaller than the batch is kept once, repeated at measure time"
    assert latency.FirstRows(2).rows() is None


def test_of_workload_times_predict_on_the_columns_an_export_feeds_it():
    seen = []

    class Workload:
        @staticmethod
        def model_inputs(meta):
            return ["x"]

        @staticmethod
        def predict(model, batch):
            seen.append(sorted(batch))
            return model(batch["x"])

    rows = {"x": torch.randn(2, 4), "labels": torch.randn(2, 3), "unused": torch.randn(2)}
    model = Counting()
    measured = latency.of_workload(Workload, model, rows, Cfg(latency_batch_size=5, latency_batches=3), meta={},
                                   device=CPU)
    assert measured["parameters"] == 21 and len(model.calls) == 6
    assert seen == [["x"]] * 6 and {c["rows"] for c in model.calls} == {5}


def test_only_rank_zero_of_a_process_group_measures(monkeypatch):
    assert latency.measures_here(), "no process group: this process measures"
    monkeypatch.setattr(torch.distributed, "is_available", lambda: True)
    monkeypatch.setattr(torch.distributed, "is_initialized", lambda: True)
    monkeypatch.setattr(torch.distributed, "get_rank", lambda: 1)
    assert not latency.measures_here()
    monkeypatch.setattr(torch.distributed, "get_rank", lambda: 0)
    assert latency.measures_here()


# --- raysweep's loop ------------------------------------------------------------------------------

class Linear:
    """A workload of raysweep's loop on x -> 2x (one column the export feeds, labels beside it)."""

    METRICS = {"val_loss": "min", "train_loss": "min"}
    predicted_rows: list[int] = []

    @staticmethod
    def build_model(cfg, meta):
        return torch.nn.Linear(4, 1)

    @staticmethod
    def model_inputs(meta):
        return ["x"]

    @staticmethod
    def predict(model, batch):
        Linear.predicted_rows.append(len(batch["x"]))
        return model(batch["x"]).squeeze(1)

    @staticmethod
    def compute_loss(model, batch, cfg):
        pred = model(batch["x"]).squeeze(1)
        return torch.nn.functional.mse_loss(pred, batch["labels"]), pred

    @staticmethod
    def compute_metrics(pred, labels, meta):
        return {"val_loss": float(((pred - labels) ** 2).mean())}


def loop_reports(cfg: Cfg) -> tuple[list[dict], int]:
    """Each epoch's reported metrics, and how many times the validation split was read."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(96, 4, generator=g)
    batches = [{"x": x[i:i + 32], "labels": 2 * x[i:i + 32].sum(1)} for i in range(0, 96, 32)]
    reads = []

    def val():
        reads.append(1)
        return iter(batches)

    Linear.predicted_rows = []
    trainee = loop.build(Linear, cfg, {}, device=CPU)
    reports = []
    loop.run_epochs(Linear, cfg, trainee, loop.EpochData(train=lambda epoch: batches, val=val),
                    lambda metrics, files: reports.append(metrics), device=CPU)
    return reports, len(reads)


def test_the_loop_reports_latency_and_parameters_every_epoch_when_asked():
    reports, reads = loop_reports(Cfg(epochs=3, learning_rate=0.01, measure_latency=True, latency_batch_size=8,
                                      latency_batches=4))
    assert [m["epoch"] for m in reports] == [1, 2, 3]
    assert all(m["latency_ms"] > 0 and m["parameters"] == 5 for m in reports)
    assert isinstance(reports[0]["parameters"], int)
    assert reads == 3, "the timed rows come from the validation pass: no second read of the split"
    assert Linear.predicted_rows.count(8) == 3 * (4 + 4), "warm-up and timed passes of 8 rows each epoch"


def test_the_loop_reports_them_at_the_last_epoch_only_when_asked():
    reports, _ = loop_reports(Cfg(epochs=3, learning_rate=0.01, measure_latency=True, latency_every="last"))
    assert ["latency_ms" in m for m in reports] == [False, False, True]
    assert ["parameters" in m for m in reports] == [False, False, True]
    assert reports[-1]["latency_ms"] > 0 and reports[-1]["parameters"] == 5


def test_the_last_epoch_of_an_early_stopped_trial_measures():
    """The val loss rises from the first epoch on (the learning rate is far too high), so patience 1
    stops at epoch 2: that is the trial's last epoch, and latency_every: last measures there."""
    reports, _ = loop_reports(Cfg(epochs=6, learning_rate=5.0, optimizer="sgd", early_stopping_patience=1,
                                  measure_latency=True, latency_every="last"))
    assert len(reports) < 6, "the test's learning rate makes it stop early"
    assert "latency_ms" in reports[-1] and all("latency_ms" not in m for m in reports[:-1])
    assert reports[-1].get("restored_best_epoch") == 1


def test_the_loop_measures_nothing_when_not_asked():
    reports, reads = loop_reports(Cfg(epochs=2, learning_rate=0.01))
    assert all("latency_ms" not in m and "parameters" not in m for m in reports)
    assert Linear.predicted_rows == [32] * 3 * 2, "predict ran on the validation batches only"
    assert reads == 2


def test_the_loop_leaves_measuring_to_rank_zero(monkeypatch):
    monkeypatch.setattr(latency, "measures_here", lambda: False)
    reports, _ = loop_reports(Cfg(epochs=2, learning_rate=0.01, measure_latency=True))
    assert all("latency_ms" not in m for m in reports)


# --- an own loop's session ------------------------------------------------------------------------

@dataclass
class FakeSession:
    """The executor's side of a trial, without Ray: reports kept in a list."""

    world_rank: int = 0
    meta: dict = None
    device: torch.device = CPU
    resumed: Path | None = None
    world_size: int = 1
    data_path: str = ""

    def __post_init__(self):
        self.reports = []

    def report(self, metrics, checkpoint=None):
        self.reports.append(metrics)

    def prepare_model(self, model):
        return model


def own_session(cfg=None, *, world_rank: int = 0) -> tuple[OwnSession, FakeSession]:
    executor = FakeSession(world_rank=world_rank, meta={})
    return OwnSession(executor, {"val_loss": "min"}, "regression", cfg=cfg), executor


def test_an_own_loop_measures_its_model_with_the_configs_settings():
    session, _ = own_session(Cfg(latency_batch_size=3, latency_batches=5))
    model = Counting().train()
    measured = session.measure_latency(model, torch.randn(10, 4))
    assert measured["latency_ms"] > 0 and measured["parameters"] == 21
    assert [c["rows"] for c in model.calls] == [3] * 10 and model.training


def test_an_own_loop_passes_tuples_positionally_and_mappings_by_keyword():
    session, _ = own_session()   # no cfg: TrainingConfig's defaults (1 row, 20 + 20 passes)
    model = Counting()
    session.measure_latency(model, (torch.randn(2, 4), torch.tensor(2.0).expand(2)))
    session.measure_latency(model, {"x": torch.randn(2, 4), "scale": torch.ones(2)})
    assert len(model.calls) == 80 and {c["rows"] for c in model.calls} == {1}


def test_an_own_loops_other_ranks_measure_nothing():
    session, _ = own_session(Cfg(), world_rank=1)
    model = Counting()
    assert session.measure_latency(model, torch.randn(2, 4)) == {} and model.calls == []


def test_an_own_loops_first_report_must_carry_latency_when_the_spec_asks_for_it_every_epoch():
    session, _ = own_session(Cfg(measure_latency=True))
    with pytest.raises(returns.WorkloadReturnError, match="session.measure_latency"):
        session.report({"epoch": 1, "val_loss": 0.5})
    session, executor = own_session(Cfg(measure_latency=True))
    session.report({"epoch": 1, "val_loss": 0.5, **session.measure_latency(Counting(), torch.randn(2, 4))})
    assert executor.reports[0]["parameters"] == 21
    session, executor = own_session(Cfg(measure_latency=True, latency_every="last"))
    session.report({"epoch": 1, "val_loss": 0.5})
    session, executor = own_session(Cfg())
    session.report({"epoch": 1, "val_loss": 0.5})
    assert "latency_ms" not in executor.reports[0]


# --- a sweep (slow: starts Ray) -------------------------------------------------------------------

LINEAR = Path(__file__).resolve().parents[2] / "examples" / "linear"


@pytest.fixture(scope="module")
def linear_data(tmp_path_factory):
    out = tmp_path_factory.mktemp("linear_data")
    load_workload(str(LINEAR / "linear.py")).DATA.write(out)
    return out


@pytest.mark.slow
@pytest.mark.parametrize("resources", [["resources.executor=in_trial"],
                                       ["resources.executor=torch_trainer", "resources.workers_per_trial=2"]],
                         ids=["in_trial", "two_ddp_workers"])
def test_a_sweep_stores_what_each_trial_measured(ray_session, linear_data, tmp_path, resources):
    """latency_ms and parameters reach Tune and the results store like a val metric; under DDP, rank 0's."""
    s = spec.load(LINEAR / "spec.yaml", [f"data.path={linear_data}", f"storage_path={tmp_path / 'results'}",
                                         "search.num_samples=2", "scheduler.type=fifo", "fixed.epochs=2",
                                         "fixed.measure_latency=true", "resources.max_concurrent_trials=1", *resources])
    results = store.load(sweep.run(s))
    assert list(results.trials["status"]) == ["finished"] * 2, results.trials[["status", "error"]]
    assert len(results.curves) == 4 and (results.curves["latency_ms"] > 0).all()
    for _, trial in results.trials.iterrows():
        width = int(trial["hidden_units"])
        curve = results.curves[results.curves["trial"] == trial["trial"]]
        assert (curve["parameters"] == 4 * width + width + width + 1).all(), "the trial's own model"
