"""A LightningModule (examples/lightning) is tuned as it is: Lightning's Trainer trains it in each
trial, HyperBand pauses it, and a paused trial goes on from Lightning's checkpoint to what a
straight run reports."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from raysweep import spec
from raysweep.analysis import store
from raysweep.phases import sweep
from raysweep.trainables import KINDS, kind_of
from raysweep.workloads import load_workload

pytest.importorskip("pytorch_lightning", reason="pip install raysweep[lightning] (make test installs it)")
pytestmark = pytest.mark.slow
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "lightning"


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    out = tmp_path_factory.mktemp("regressor")
    load_workload(str(EXAMPLE / "regressor.py")).DATA.write(out)
    return out


def curves(tmp_path: Path, data: Path, *overrides: str):
    s = spec.load(EXAMPLE / "spec.yaml", [f"data.path={data}", f"storage_path={tmp_path / 'results'}", *overrides])
    results = store.load(sweep.run(s))
    frame = results.curves.copy()
    frame["hidden_units"] = frame["trial"].map(results.trials.set_index("trial")["hidden_units"])
    return results.trials, frame


def test_hyperband_pauses_a_lightning_run_and_it_goes_on_to_what_a_straight_run_reports(ray_session, data, tmp_path):
    assert kind_of(load_workload(str(EXAMPLE / "regressor.py"))) is KINDS["own_loop"]
    grid = ["params={hidden_units: {type: grid, values: [16, 32, 64]}}", "search.algorithm=grid",
            "search.num_samples=1", "fixed.learning_rate=0.05", "fixed.epochs=4", "resources.max_concurrent_trials=1"]
    trials, paused = curves(tmp_path / "hyperband", data, *grid, "scheduler={type: hyperband, reduction_factor: 2}")
    assert set(trials["status"]) <= {"finished", "stopped by HyperBand"} and trials["epochs_run"].max() == 4
    # The straight run also times the module (Lightning's example_input_array) every epoch.
    _, straight = curves(tmp_path / "fifo", data, *grid, "scheduler.type=fifo", "fixed.measure_latency=true")
    assert (straight["latency_ms"] > 0).all()
    sizes = straight.groupby("hidden_units")["parameters"].first()
    assert list(sizes) == [4 * h + h + h + 1 for h in sizes.index]   # Linear(4, h), Linear(h, 1)
    joined = paused.merge(straight, on=["hidden_units", "epoch"], suffixes=("_paused", "_straight"))
    assert len(joined) == len(paused)
    assert np.allclose(joined["val_loss_paused"], joined["val_loss_straight"], rtol=1e-5)
    assert np.allclose(joined["train_loss_paused"], joined["train_loss_straight"], rtol=1e-5)
