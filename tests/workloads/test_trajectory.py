"""The trajectory-error workload: generator, splits, windows, metrics, the LSTM learning, a sweep."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from raysweep import cli, spec
from raysweep.analysis import leaderboard
from raysweep.datasets import batching
from raysweep.datasets import trajectory as generator
from raysweep.phases import sweep
from raysweep.training import loop
from raysweep.workloads import trajectory

from conftest import assert_same_seed_same_data, read_split

SMALL = dict(layers_per_part=3, seconds_per_layer=16.0, sequence_length=10, stride=4, rows_per_shard=512)


@pytest.fixture(scope="module")
def traj_data(tmp_path_factory):
    out = tmp_path_factory.mktemp("trajectory")
    generator.write(out, seed=5, **SMALL)
    return out


def test_the_generator_is_deterministic(tmp_path, traj_data):
    assert_same_seed_same_data(generator.write, traj_data, tmp_path, seed=5, **SMALL)


def test_splits_share_no_layer_and_scalers_come_from_train(traj_data):
    meta = json.loads((traj_data / "meta.json").read_text())
    layers = {split: set(read_split(traj_data, split)["layer"].to_pylist()) for split in ("train", "val", "test")}
    assert not layers["train"] & layers["val"] and not layers["train"] & layers["test"]
    assert not layers["val"] & layers["test"]
    assert layers["val"] == set(meta["split"]["val_layers"])
    for split in ("val", "test"):   # every part is seen in every split
        assert {meta["layers"][i]["part"] for i in layers[split]} == set(generator.PARTS)
    train = batching.arrow_to_torch(read_split(traj_data, "train"))
    x = train["features"].numpy().reshape(-1, 4)
    assert meta["scaler"]["mean"] == pytest.approx(x.astype(np.float64).mean(axis=0), rel=1e-4, abs=1e-3)
    assert meta["target_scaler"]["std"] == pytest.approx(train["labels"].numpy().std(axis=0), rel=1e-3)
    assert meta["rows"]["train"] == len(x) // 10


def test_a_window_ends_where_its_target_is_read():
    features = np.arange(30, dtype=float).reshape(15, 2)
    targets = 100 + np.arange(15, dtype=float)[:, None]
    x, y = generator.windows(features, targets, sequence_length=4, stride=3)
    assert x.shape == (4, 4, 2)
    assert x[1, :, 0].tolist() == [6, 8, 10, 12]      # samples 3..6
    assert y[:, 0].tolist() == [103, 106, 109, 112]   # the target at each window's last sample


def test_the_error_depends_on_the_motion():
    """Faster moves lag more: the servo's error grows with the feed rate (as a real one does)."""
    t = np.arange(3000) / generator.SIM_HZ
    slow = np.stack([20 * t, 0 * t], axis=1)[None]
    fast = np.stack([80 * t, 0 * t], axis=1)[None]
    rng = np.random.default_rng(0)
    lag_slow = generator.simulate_servo(slow, rng)[0, 2000:, 0].mean()
    lag_fast = generator.simulate_servo(fast, rng)[0, 2000:, 0].mean()
    assert 0 < lag_slow < lag_fast


def test_metrics_against_a_hand_computation():
    true = np.array([[0.0, 10.0], [2.0, 20.0], [4.0, 30.0]])
    pred = np.array([[1.0, 10.0], [2.0, 22.0], [4.0, 30.0]])
    m = trajectory.compute_metrics(pred, true, {})
    assert m["val_mae"] == pytest.approx(3 / 6)
    assert m["val_rmse"] == pytest.approx(np.sqrt(5 / 6))
    assert m["val_mae_x"] == pytest.approx(1 / 3) and m["val_mae_y"] == pytest.approx(2 / 3)
    r2_x, r2_y = 1 - (1 / 3) / np.var([0, 2, 4]), 1 - (4 / 3) / np.var([10, 20, 30])
    assert m["val_r2_x"] == pytest.approx(r2_x) and m["val_r2"] == pytest.approx((r2_x + r2_y) / 2)
    assert m["val_loss"] == pytest.approx(1 - m["val_r2"])
    assert m["val_p50"] == pytest.approx(0.0) and m["val_p99"] == pytest.approx(np.percentile([1, 0, 0, 2, 0, 0], 99))


def test_the_lstm_learns_the_tracking_error(traj_data):
    meta = json.loads((traj_data / "meta.json").read_text())
    cfg = trajectory.Config(epochs=6, batch_size=64, hidden_size=32, num_layers=1, learning_rate=3e-3,
                            loss="hybrid", loss_alpha=0.7, shuffle_buffer=0)
    cpu = torch.device("cpu")
    trainee = loop.build(trajectory, cfg, meta, device=cpu)
    train = batching.arrow_to_torch(read_split(traj_data, "train"))
    val = batching.arrow_to_torch(read_split(traj_data, "val"))

    def cut(data, size):
        n = len(data["labels"])
        return [{k: v[i:i + size] for k, v in data.items()} for i in range(0, n, size)]

    reports = []
    loop.run_epochs(trajectory, cfg, trainee, loop.EpochData(train=lambda e: cut(train, 64), val=lambda: cut(val, 4096)),
                    lambda m, f: reports.append(m), device=cpu)
    first, last = reports[0], reports[-1]
    assert last["val_r2"] > 0.5, "explains most of the variance of the servo error"
    assert last["val_mae"] < first["val_mae"]
    assert last["latency_ms"] > 0 and last["throughput_rows_per_s"] > 0


def test_data_command_and_its_errors(tmp_path, capsys):
    assert cli.main(["data", "trajectory", "--out", str(tmp_path / "t"), "--layers-per-part", "3",
                     "--seconds-per-layer", "5", "--sequence-length", "8"]) == 0
    assert json.loads((tmp_path / "t/meta.json").read_text())["sequence_length"] == 8
    assert cli.main(["data", "trajectory", "--out", str(tmp_path / "u"), "--layers-per-part", "2"]) == 2
    assert "at least 3 layers per part" in capsys.readouterr().err


@pytest.mark.slow
def test_an_lstm_sweep_runs_end_to_end(ray_session, traj_data, tmp_path):
    s = spec.load("search_spaces/trajectory_lstm_asha.yaml", [
        f"data.path={traj_data}", f"storage_path={tmp_path}", "search.num_samples=4", "fixed.epochs=3",
        "scheduler.grace_period=1"])
    experiment_dir = sweep.run(s)
    table = leaderboard.leaderboard(experiment_dir, metric="val_mae", mode="min")
    assert len(table) == 4 and (table["status"] != "errored").all()
    assert table["best_val_mae"].notna().all()
    assert set(table["loss"]) <= {"mae", "mse", "hybrid"}
    assert table[table["loss"] != "hybrid"]["loss_alpha"].isna().all(), "alpha only on the hybrid branch"
    first = table[table["trial"] == table["trial"].iloc[0]]
    assert first["best_val_mae"].iloc[0] > 0
