"""The battery example (examples/battery/): its generator, its workload, its spec, and a sweep of it."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from raysweep import cli, spec
from raysweep.analysis import champion, leaderboard, store
from raysweep.datasets import batching, shards
from raysweep.deploy import export
from raysweep.phases import sweep
from raysweep.workloads import load_workload

from conftest import assert_same_seed_same_data, read_split

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "battery"
SPEC = EXAMPLE / "spec.yaml"
battery = load_workload(str(EXAMPLE / "battery.py"))
cells = battery.cells   # the generator, as battery.py imports it
SMALL = dict(n_cells=12, window=10, horizon=4, cycles_per_step=10, stride=10, rows_per_shard=128)


@pytest.fixture(scope="module")
def small_data(tmp_path_factory):
    out = tmp_path_factory.mktemp("battery")
    cells.write(out, seed=5, **SMALL)
    return out


def test_the_generator_is_reproducible(tmp_path, small_data):
    assert_same_seed_same_data(cells.write, small_data, tmp_path, seed=5, **SMALL)


def test_cells_are_split_whole_and_scalers_come_from_train(small_data):
    meta = json.loads((small_data / "meta.json").read_text())
    found = {split: set(read_split(small_data, split)["cell"].to_pylist()) for split in ("train", "val", "test")}
    assert not found["train"] & found["val"] and not found["train"] & found["test"] and not found["val"] & found["test"]
    assert found["train"] | found["val"] | found["test"] == set(range(SMALL["n_cells"]))
    assert {split: sorted(c) for split, c in found.items()} == {s: meta["split"][f"{s}_cells"] for s in found}
    train = batching.arrow_to_torch(read_split(small_data, "train"))
    val = batching.arrow_to_torch(read_split(small_data, "val"))
    x = train["features"].numpy().astype(np.float64)
    assert x.shape[1:] == (SMALL["window"], len(cells.FEATURES))
    assert meta["scaler"]["mean"] == pytest.approx(x.mean(axis=(0, 1)), rel=1e-4, abs=1e-4)
    assert meta["scaler"]["std"] == pytest.approx(x.std(axis=(0, 1)), rel=1e-3)
    assert meta["target_scaler"]["mean"] == pytest.approx(train["labels"].double().mean().item(), abs=1e-5)
    assert meta["target_scaler"]["std"] == pytest.approx(train["labels"].double().std(unbiased=False).item(), rel=1e-3)
    both = np.concatenate([x, val["features"].numpy()]).mean(axis=(0, 1))
    assert meta["scaler"]["mean"] != pytest.approx(both, rel=1e-3), "val windows must not shift the scaler"


def test_fade_accelerates_past_the_knee_and_hard_use_shortens_life():
    fleet = cells.simulate(30, seed=0)
    assert (np.diff(fleet.soh, axis=1) <= 0).all(), "the noise-free state of health never rises"
    for c in range(30):
        knee, end = int(fleet.knee_cycle[c]), int(fleet.end_of_life[c])
        early_rate = (fleet.soh[c, 0] - fleet.soh[c, knee // 2]) / (knee // 2)
        late_rate = (fleet.soh[c, end - 20] - fleet.soh[c, end]) / 20
        assert late_rate > 5 * early_rate, f"cell {c}: no knee ({early_rate:.2e} then {late_rate:.2e} per cycle)"
        assert fleet.soh[c, end] <= cells.END_OF_LIFE_SOH < fleet.soh[c, end - 1]
    stress = cells.stress(fleet.conditions)
    hard = stress > np.median(stress)
    assert np.median(fleet.end_of_life[hard]) < 0.8 * np.median(fleet.end_of_life[~hard])


def test_a_window_ends_where_its_labels_begin():
    index = np.arange(60, dtype=np.float64)
    features = np.stack([index, 100 + index])[:, :, None]          # (2 cells, 60 cycles, 1 feature)
    soh = 1.0 - 0.001 * np.stack([index, 2 * index])
    end_of_life = np.array([50, 40])
    shape = dict(window=5, horizon=3, cycles_per_step=4, stride=10)
    w = cells.windows(features, soh, end_of_life, [0, 1], target="soh", **shape)
    assert w["cell"].tolist() == [0, 0, 0, 0, 1, 1, 1]
    assert w["cycle"].tolist() == [5, 15, 25, 35, 5, 15, 25]
    assert w["features"].shape == (7, 5, 1)
    assert w["features"][5, :, 0].tolist() == [110, 111, 112, 113, 114]   # cycles 11..15 of cell 1
    assert w["labels"][5] == pytest.approx(soh[1, [14, 18, 22]])
    rul = cells.windows(features, soh, end_of_life, [0, 1], target="rul", **shape)["labels"]
    assert rul[5].tolist() == [26, 22, 18]
    assert rul.min() >= 1 and (np.diff(rul, axis=1) == -4).all()


def test_the_data_command_writes_the_chosen_target(tmp_path, capsys):
    workload = str(EXAMPLE / "battery.py")
    args = ["--cells", "8", "--window", "10", "--horizon", "4", "--stride", "10"]
    assert cli.main(["data", workload, "--out", str(tmp_path / "rul"), "--target", "rul", *args]) == 0
    assert "wrote battery data" in capsys.readouterr().out
    meta = json.loads((tmp_path / "rul/meta.json").read_text())
    assert meta["target"] == "rul" and meta["target_names"][-1] == "rul_in_30_cycles"
    labels = batching.arrow_to_torch(read_split(tmp_path / "rul", "val"))["labels"].numpy()
    assert labels.shape[1] == 4 and labels.min() >= 1 and (np.diff(labels, axis=1) == -10).all()
    assert cli.main(["data", workload, "--out", str(tmp_path / "long"), "--window", "400"]) == 2
    err = capsys.readouterr().err
    assert "leave it no sample" in err and "Traceback" not in err
    with pytest.raises(SystemExit) as exit_:   # argparse formats each option's help with %
        cli.main(["data", workload, "--help"])
    assert exit_.value.code == 0 and "--cycles-per-step" in capsys.readouterr().out


def test_the_shipped_spec_validates(small_data, tmp_path, capsys):
    assert cli.main(["validate", str(SPEC), "--set", f"data.path={small_data}"]) == 0
    assert "OK" in capsys.readouterr().out
    s = spec.load(SPEC, [f"data.path={small_data}"])
    assert s.workload == str(EXAMPLE / "battery.py") and s.metric == "val_rmse"
    (loss,) = [p for p in s.params if p.name == "loss"]
    assert set(loss.values) == {"mse", "huber", "physics_informed"}
    assert {sub.name for sub in loss.branch("physics_informed")} == {"loss_monotonicity_weight", "loss_smoothness_weight"}
    assert loss.branch("mse") == ()
    # Data written for another workload is refused, with the command that writes the right data.
    columns = {"features": np.zeros((2, 1)), "labels": np.zeros((2, 1))}
    shards.write_dataset(tmp_path / "other", {"train": columns, "val": columns}, workload="trajectory")
    assert cli.main(["validate", str(SPEC), "--set", f"data.path={tmp_path / 'other'}"]) == 2
    assert "holds trajectory data" in capsys.readouterr().err


def test_the_physics_penalties_enter_the_loss(small_data):
    meta = json.loads((small_data / "meta.json").read_text())
    batch = champion.read_rows(small_data, meta, "train", 64)
    torch.manual_seed(0)
    model = battery.build_model(battery.Config(), meta).eval()
    steps = model.standardised(batch["features"]).detach()
    assert (steps.diff(dim=1) > 0).any(), "the untrained model predicts some rises for the penalty to act on"

    @torch.no_grad()
    def loss(**fields) -> float:
        return float(battery.compute_loss(model, batch, dataclasses.replace(battery.Config(), **fields))[0])

    plain = dict(loss="physics_informed", loss_monotonicity_weight=0.0, loss_smoothness_weight=0.0)
    assert loss(**plain) == pytest.approx(loss(loss="mse"))
    rises = torch.relu(steps.diff(dim=1)).mean().item()
    curvature = steps.diff(n=2, dim=1).pow(2).mean().item()
    assert loss(**plain | {"loss_monotonicity_weight": 0.5}) - loss(**plain) == pytest.approx(0.5 * rises, rel=1e-4)
    assert loss(**plain | {"loss_smoothness_weight": 0.5}) - loss(**plain) == pytest.approx(0.5 * curvature, rel=1e-4)
    assert loss(**plain | {"loss_base": "mae"}) == pytest.approx(loss(loss="mae"))


def test_metrics_against_a_hand_computation():
    true = np.array([[1.00, 0.90, 0.80], [0.95, 0.90, 0.85]])
    predicted = np.array([[1.00, 0.92, 0.92], [0.95, 0.96, 0.85]])   # one rise and one flat step (no rise) of 4
    m = battery.compute_metrics(predicted, true, {"mape_floor": 0.01})
    assert m["val_mae"] == pytest.approx(0.20 / 6)
    assert m["val_rmse"] == pytest.approx(math.sqrt((0.02 ** 2 + 0.12 ** 2 + 0.06 ** 2) / 6))
    assert m["val_mape"] == pytest.approx(100 * (0.02 / 0.90 + 0.12 / 0.80 + 0.06 / 0.90) / 6)
    assert m["val_rise_share"] == pytest.approx(0.25)
    assert set(m) == set(battery.METRICS) - {"train_loss"}
    # Near the end of life RUL nears 0, where MAPE's denominator is floored.
    assert battery.compute_metrics(np.array([[4.0, 0.0]]), np.array([[2.0, 1.0]]), {"mape_floor": 10.0})["val_mape"] \
        == pytest.approx(100 * (2 / 10 + 1 / 10) / 2)


SWEEP_DATA = dict(n_cells=16, window=10, horizon=4, cycles_per_step=10, stride=4, rows_per_shard=512)


@pytest.mark.slow
def test_the_shipped_spec_sweeps_end_to_end(ray_session, tmp_path):
    meta = cells.write(tmp_path / "data", seed=1, **SWEEP_DATA)
    s = spec.load(SPEC, [f"data.path={tmp_path / 'data'}", f"storage_path={tmp_path / 'results'}",
                         "search.num_samples=3", "fixed.epochs=5", "scheduler.grace_period=2"])
    experiment_dir = sweep.run(s)

    table = leaderboard.leaderboard(experiment_dir, metric="val_r2", mode="max")
    assert len(table) == 3
    assert set(table["status"]) <= {"finished", "stopped by ASHA", "early stopped"}, table["status"].tolist()
    curves = store.load(experiment_dir).curves
    reported = [m for m in battery.METRICS if m in curves]
    assert set(reported) == set(battery.METRICS)
    assert np.isfinite(curves[reported].to_numpy(dtype=float)).all()
    assert table["best_val_r2"].max() > 0.5, "the best trial learnt the fade (R^2 well above 0)"
    # Carrying today's capacity forward already explains much of the variance; the forecast must beat it.
    val = champion.read_rows(tmp_path / "data", meta, "val")
    capacity_now = val["features"][:, -1, cells.FEATURES.index("capacity_ah")] / cells.RATED_CAPACITY_AH
    persistence_rmse = (val["labels"] - capacity_now[:, None]).pow(2).mean().sqrt().item()
    assert curves["val_rmse"].min() < 0.8 * persistence_rmse

    model_dir = export.export(experiment_dir, tmp_path / "champion")
    frame, metrics = export.predict(model_dir, tmp_path / "data")
    assert list(frame.columns) == [f"soh_in_{10 * j}_cycles" for j in range(4)]
    assert metrics["val_r2"] > 0.5
