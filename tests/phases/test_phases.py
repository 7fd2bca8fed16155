"""The tuning phases end to end at tiny size: lr-find, the LR sweep, io-search, warm starts."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from raysweep import cli, spec
from raysweep.analysis import leaderboard
from raysweep.datasets import glideator
from raysweep.phases import io_search, lr_find, sweep

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def shipped(name: str, tiny_data, tmp_path, *extra: str) -> spec.Spec:
    return spec.load(ROOT / "search_spaces" / name, [
        f"data.path={tiny_data}", f"storage_path={tmp_path / 'results'}", *extra])


def test_lr_find_runs_a_range_test_per_architecture_and_writes_a_spec(ray_session, tiny_data, tmp_path, capsys):
    spec_path = ROOT / "search_spaces" / "glideator_asha_random.yaml"
    out = tmp_path / "narrowed.yaml"
    code = cli.main(["lr-find", str(spec_path), "--set", f"data.path={tiny_data}",
                     "--set", f"storage_path={tmp_path / 'results'}", "--set", "fixed.batch_size=64",
                     "--set", "lr_find={over: [deep_hidden_units], subset_rows: 512, num_steps: 60, "
                     "fit_max_steps: 300}", "--write-spec", str(out)])
    printed = capsys.readouterr().out
    assert code == 0, printed
    (experiment_dir,) = (tmp_path / "results").iterdir()
    summary = json.loads((experiment_dir / lr_find.SUMMARY_FILE).read_text())
    assert [t["over"]["deep_hidden_units"] for t in summary["tests"]] == [[128, 64], [256, 128]]
    curves = pd.read_parquet(experiment_dir / lr_find.CURVES_FILE)
    assert set(curves["deep_hidden_units"]) == {"[128, 64]", "[256, 128]"}
    assert (curves.groupby("deep_hidden_units")["lr"].apply(lambda lr: lr.is_monotonic_increasing)).all()
    assert (experiment_dir / lr_find.PLOT_FILE).read_bytes().startswith(b"\x89PNG")
    for test in summary["tests"]:
        s = test["suggestion"]
        assert s["low"] < s["high"] < s["min_loss_lr"], "the range stays below the minimum-loss LR"
        assert test["steps_to_fit"] and test["steps_to_fit"] <= 300
    written = spec.load(out)
    (lr,) = [p for p in written.params if p.name == "learning_rate"]
    assert (lr.low, lr.high) == (summary["low"], summary["high"])
    assert "suggested learning_rate range" in printed


def test_lr_sweep_ranks_each_rate_over_seeds_reproducibly(ray_session, tiny_data, tmp_path, capsys):
    s = shipped("glideator_lr_sweep.yaml", tiny_data, tmp_path, "params.learning_rate.values=[1.0e-3, 1.0e-2]",
                "params.seed.values=[0, 1]", "fixed.epochs=1", "fixed.batch_size=128")
    experiment_dir = sweep.run(s)
    table = leaderboard.leaderboard(experiment_dir)
    assert len(table) == 4 and sorted(table["seed"]) == [0, 0, 1, 1]
    again = leaderboard.leaderboard(sweep.run(s))
    columns = ["learning_rate", "seed", "best_val_loss"]
    pd.testing.assert_frame_equal(table[columns], again[columns])   # same grid, same metrics
    assert table.groupby("learning_rate")["best_val_loss"].nunique().tolist() == [2, 2], "seeds differ"
    groups = leaderboard.group_by(table, "learning_rate", "val_loss", "min")
    assert groups["trials"].tolist() == [2, 2] and groups["std_val_loss"].notna().all()
    capsys.readouterr()
    assert cli.main(["rank", str(experiment_dir), "--group-by", "learning_rate"]) == 0
    printed = capsys.readouterr().out
    assert "by learning_rate" in printed and "mean_val_loss" in printed
    assert "best trial per learning_rate (scientific" in printed
    assert cli.main(["rank", str(experiment_dir), "--group-by", "learnig_rate"]) == 2


def test_io_search_ranks_tiny_batches_below_large_ones(ray_session, tiny_data, tmp_path_factory, tmp_path):
    wds = tmp_path_factory.mktemp("glideator_wds")
    glideator.write(wds, n_sites=6, n_days=150, seed=3, rows_per_shard=256, fmt="webdataset")
    s = shipped("glideator_io_search.yaml", tiny_data, tmp_path, "io_search.steps=40", "io_search.warmup_steps=4",
                f"io_search.grid={{batch_size: [8, 256], data_path: [{tiny_data}, {wds}], materialize: [true], "
                "read_parallelism: [2], cpus_per_worker: [1]}")
    experiment_dir, table = io_search.run(s)
    assert (table["error"] == "").all(), table["error"].tolist()
    for path in (str(tiny_data), str(wds)):
        rows = table[table["data_path"] == path].set_index("batch_size")
        assert rows.loc[256, "samples_per_s"] > rows.loc[8, "samples_per_s"], "tiny batches are slower per sample"
    assert table["batch_size"].iloc[0] == 256
    assert table["input_wait_frac"].between(0, 1).all() and (table["cpu_util"] > 0).all()
    assert (experiment_dir / io_search.RESULTS_FILES[1]).is_file()
    assert io_search.best_settings(table)["batch_size"] == 256


def test_warm_start_evaluates_the_given_points_first(ray_session, raw_spec, tmp_path):
    raw_spec["fixed"]["epochs"] = 1
    raw_spec["resources"]["max_concurrent_trials"] = 1
    earlier = sweep.run(spec.validate(raw_spec, overrides=["search.num_samples=3"]))
    best = leaderboard.leaderboard(earlier).iloc[0]["learning_rate"]

    raw_spec["search"] = {"algorithm": "optuna", "num_samples": 4, "seed": 0,
                          "points_to_evaluate": [{"learning_rate": 5e-3}],
                          "warm_start": {"experiment": str(earlier), "top": 1}}
    experiment_dir = sweep.run(spec.validate(raw_spec))
    from ray.tune import ExperimentAnalysis

    trials = sorted(ExperimentAnalysis(str(experiment_dir)).trials, key=lambda t: int(t.experiment_tag.split("_")[0]))
    assert [t.config["learning_rate"] for t in trials[:2]] == pytest.approx([5e-3, best])
    assert len(trials) == 4
