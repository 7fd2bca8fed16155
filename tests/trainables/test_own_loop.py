"""A training loop of one's own (the README's examples/own_loop) sweeps like raysweep's loop: ASHA
and HyperBand stop and pause it, a fault is retried from its state, a TorchTrainer runs it on two
DDP workers, and export writes its state, or TorchScript where it gives a model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from raysweep import cli, spec
from raysweep.analysis import champion, store
from raysweep.datasets import shards
from raysweep.deploy import export
from raysweep.phases import sweep
from raysweep.trainables import KINDS, kind_of
from raysweep.workloads import load_workload

pytestmark = pytest.mark.slow
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "own_loop"
MODELLING = '''
def build_model(cfg, meta):
    return torch.nn.Sequential(torch.nn.Linear(4, cfg.hidden_units), torch.nn.Tanh(), torch.nn.Linear(cfg.hidden_units, 1))

def predict(model, batch):
    return model(batch["features"])

def model_inputs(meta):
    return ["features"]
'''


def workload(tmp_path: Path, extra: str = "", replace: tuple[str, str] | None = None) -> Path:
    source = (EXAMPLE / "own_loop.py").read_text()
    if replace:
        source = source.replace(*replace)
    (tmp_path / "own_loop.py").write_text(source + extra)
    return tmp_path / "own_loop.py"


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    out = tmp_path_factory.mktemp("own_loop_data")
    load_workload(str(EXAMPLE / "own_loop.py")).DATA.write(out)
    return out


def sweep_of(tmp_path: Path, data: Path, module: Path, *overrides: str):
    s = spec.load(EXAMPLE / "spec.yaml", [f"workload={module}", f"data.path={data}",
                                          f"storage_path={tmp_path / 'results'}", *overrides])
    return sweep.run(s)


def test_the_example_is_an_own_loop_that_sweeps_ranks_and_exports_its_state(ray_session, data, tmp_path, capsys):
    assert kind_of(load_workload(str(EXAMPLE / "own_loop.py"))) is KINDS["own_loop"]
    assert len((EXAMPLE / "own_loop.py").read_text().splitlines()) < 40, "the README promises under 40 lines"
    experiment_dir = sweep_of(tmp_path, data, EXAMPLE / "own_loop.py")
    trials = store.load(experiment_dir).trials
    assert len(trials) == 6 and set(trials["status"]) <= {"finished", "stopped by ASHA"}
    assert "stopped by ASHA" in set(trials["status"]), "ASHA stops an own loop as it stops raysweep's"
    assert trials["best_val_loss"].min() < 0.2, "it learns"
    assert cli.main(["export", str(experiment_dir), "--to", str(tmp_path / "champion")]) == 0
    assert "the trial's state of epoch 6" in capsys.readouterr().out
    card = json.loads((tmp_path / "champion" / "model_card.json").read_text())
    assert card["kind"] == "own_loop" and card["state"]["load"] == "torch.load('train_state.pt', weights_only=True)"
    state = torch.load(tmp_path / "champion" / "train_state.pt", weights_only=True)
    assert state["epoch"] == 6 and set(state) == {"model", "optimizer", "epoch"}


def test_an_own_loop_with_a_model_exports_torchscript_that_predicts_its_val_loss(ray_session, data, tmp_path):
    module = workload(tmp_path, MODELLING)
    experiment_dir = sweep_of(tmp_path, data, module, "search.num_samples=2", "scheduler.type=fifo", "fixed.epochs=3")
    trials = store.load(experiment_dir).trials
    export.export(experiment_dir, tmp_path / "champion")
    card = json.loads((tmp_path / "champion" / "model_card.json").read_text())
    assert card["files"][:2] == ["model.pt", "state_dict.pt"] and card["inputs"][0]["shape"] == [-1, 4]
    frame, _ = export.predict(tmp_path / "champion", data)
    labels = champion.read_columns(data, shards.read_meta(data), "val")["labels"]
    mse = float(((frame.to_numpy() - labels) ** 2).mean())
    assert mse == pytest.approx(trials["best_val_loss"].min(), rel=1e-4), "the TorchScript model is the best epoch's"


def test_hyperband_pauses_and_resumes_it_to_what_a_straight_run_reports(ray_session, data, tmp_path):
    """HyperBand pauses trials at each rung and starts the survivors again from their state:
    every epoch they report is what the same config reports run straight through."""
    grid = ["params={hidden_units: {type: grid, values: [16, 32, 64]}}", "search.algorithm=grid", "search.num_samples=1",
            "fixed.learning_rate=0.05", "fixed.epochs=4", "resources.max_concurrent_trials=1"]
    straight = store.load(sweep_of(tmp_path / "fifo", data, EXAMPLE / "own_loop.py", *grid,
                                   "scheduler.type=fifo")).curves
    paused = store.load(sweep_of(tmp_path / "hyperband", data, EXAMPLE / "own_loop.py", *grid,
                                 "scheduler={type: hyperband, reduction_factor: 2}")).curves
    key = ["hidden_units", "epoch"]
    for frame, path in ((straight, tmp_path / "fifo"), (paused, tmp_path / "hyperband")):
        trials = store.load(next((path / "results").iterdir())).trials.set_index("trial")["hidden_units"]
        frame["hidden_units"] = frame["trial"].map(trials)
    joined = paused.merge(straight, on=key, suffixes=("_paused", "_straight"))
    assert len(joined) == len(paused) and joined["epoch"].max() == 4
    assert np.allclose(joined["val_loss_paused"], joined["val_loss_straight"], rtol=1e-5)


def test_a_fault_is_retried_from_its_state(ray_session, data, tmp_path):
    marker = tmp_path / "failed_once"
    module = workload(tmp_path, replace=(
        "        for batch in data.train(epoch):",
        f"        if epoch == 2 and not __import__('pathlib').Path({str(marker)!r}).exists():\n"
        f"            __import__('pathlib').Path({str(marker)!r}).write_text('x')\n"
        "            raise RuntimeError('a transient fault')\n"
        "        for batch in data.train(epoch):"))
    experiment_dir = sweep_of(tmp_path, data, module, "search.num_samples=1", "scheduler.type=fifo", "fixed.epochs=4",
                              "failure.max_retries=1")
    assert marker.exists()
    trial = store.load(experiment_dir).trials.iloc[0]
    assert trial["status"] == "finished" and trial["retries"] == 1
    results = next(experiment_dir.glob("run_in_trial_*/result.json")).read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in results] == [1, 2, 3, 4], "epochs 1 and 2 ran once"


def test_two_ddp_workers_train_it_under_a_torch_trainer(ray_session, data, tmp_path):
    s = spec.load(EXAMPLE / "spec.yaml", [f"data.path={data}", f"storage_path={tmp_path / 'r'}",
                                          "search.num_samples=1", "fixed.epochs=2", "scheduler.type=fifo",
                                          "resources.workers_per_trial=2", "resources.max_concurrent_trials=1"])
    assert s.executor == "torch_trainer"
    trials = store.load(sweep.run(s)).trials
    assert list(trials["status"]) == ["finished"], trials[["status", "error"]]
    assert trials["epochs_run"].tolist() == [2] and np.isfinite(trials["best_val_loss"]).all()


def test_an_own_loop_may_read_a_data_path_raysweep_does_not(ray_session, tmp_path):
    """A folder without meta.json: the loop reads it itself (session.data_path), raysweep reads nothing."""
    folder = tmp_path / "raw"
    folder.mkdir()
    (folder / "points.csv").write_text("\n".join(f"{i},{2 * i}" for i in range(50)))
    module = workload(tmp_path, replace=(
        "def train(cfg, data, session):                                  # the loop you already have\n",
        "def train(cfg, data, session):\n"
        "    import pathlib\n"
        "    rows = pathlib.Path(session.data_path, 'points.csv').read_text().splitlines()\n"
        "    for epoch in range(cfg.epochs):\n"
        "        session.report({'epoch': epoch + 1, 'val_loss': 1.0 / (len(rows) + epoch)}, state={'epoch': epoch + 1})\n"
        "    return\n"))
    s = spec.load(EXAMPLE / "spec.yaml", [f"workload={module}", f"data.path={folder}", f"storage_path={tmp_path / 'r'}",
                                          "search.num_samples=1", "fixed.epochs=2", "scheduler.type=fifo"])
    assert not s.data.read
    trials = store.load(sweep.run(s)).trials
    assert list(trials["status"]) == ["finished"] and trials["best_val_loss"].iloc[0] == pytest.approx(1 / 51)
