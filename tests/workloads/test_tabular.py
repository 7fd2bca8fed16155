"""Bring your own table: import in every task mode, train end to end, and each bad input's message."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from raysweep import cli, spec
from raysweep.analysis import leaderboard
from raysweep.datasets import shards, tabular
from raysweep.phases import sweep

N = 800


def table(seed: int = 0) -> pd.DataFrame:
    """Known signal: y = 2 x1 + 0.5 x2 + an offset per city, plus noise; a day column for splits."""
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"x1": rng.normal(size=N), "x2": rng.uniform(-2, 2, N),
                       "city": rng.choice(["oslo", "rome", "lima"], N), "day": np.repeat(np.arange(80), N // 80)})
    signal = 2 * df.x1 + 0.5 * df.x2 + df.city.map({"oslo": 1.5, "rome": 0.0, "lima": -1.5})
    df["y"] = signal + rng.normal(0, 0.2, N)
    df["y2"] = -signal + rng.normal(0, 0.2, N)
    df["sunny"] = np.where(signal > 0, "yes", "no")
    df["band"] = pd.cut(signal, [-np.inf, -1, 1, np.inf], labels=["low", "mid", "high"]).astype(str)
    df["gt0"] = (signal > 0).astype(int)
    df["gt1"] = (signal > 1).astype(int)
    return df


@pytest.fixture(scope="module")
def csv_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("table") / "table.csv"
    table().to_csv(path, index=False)
    return path


TASKS = {
    "regression": (["y", "y2"], "val_r2", "max", 0.8),
    "binary": (["sunny"], "val_auc", "max", 0.9),
    "multiclass": (["band"], "val_accuracy", "max", 0.7),
    "multilabel": (["gt0", "gt1"], "val_auc", "max", 0.9),
}
OTHER_TARGETS = ["y", "y2", "sunny", "band", "gt0", "gt1"]


def import_task(csv_file, out, task):
    targets = TASKS[task][0]
    drop = [c for c in OTHER_TARGETS if c not in targets]
    return tabular.import_table(csv_file, out, target=targets, task=task, categorical=["city"], drop=drop,
                                split_by="day", val_fraction=0.25)


@pytest.mark.slow
@pytest.mark.parametrize("task", list(TASKS))
def test_each_task_imports_and_trains_end_to_end(ray_session, csv_file, tmp_path, task):
    meta = import_task(csv_file, tmp_path / "data", task)
    assert meta["task"] == task and meta["rows"] == {"train": 600, "val": 200}
    metric, mode, floor = TASKS[task][1:]
    s = spec.load("search_spaces/tabular_asha.yaml", [
        f"data.path={tmp_path / 'data'}", f"storage_path={tmp_path / 'results'}", f"metric={metric}", f"mode={mode}",
        "search.num_samples=1", "fixed.epochs=6", "scheduler.type=fifo",
        "search.points_to_evaluate=[{learning_rate: 0.005, hidden_units: [64, 32], dropout: 0.0, "
        "embedding_dim: 4, batch_size: 128, weight_decay: 1.0e-6}]"])
    experiment_dir = sweep.run(s)
    row = leaderboard.leaderboard(experiment_dir, metric=metric, mode=mode).iloc[0]
    assert row["status"] == "finished"
    assert row[f"best_{metric}"] > floor, f"{task}: the MLP learns the table's signal"
    if task in ("regression", "binary"):   # the best trial's plots fit the task
        from raysweep.analysis import plots

        drawn = plots.all_plots(experiment_dir, tmp_path / "plots")
        assert ("regression" if task == "regression" else "classification") in drawn


def test_import_details(csv_file, tmp_path):
    df = table()
    df.loc[3, "x1"] = np.nan
    df.loc[df.day >= 60, "city"] = "paris"          # a category seen only in validation
    df.to_parquet(tmp_path / "t.parquet")
    meta = tabular.import_table(tmp_path / "t.parquet", tmp_path / "out", target=["y"], task="regression",
                                categorical=["city"], drop=OTHER_TARGETS[1:], split_by="day", val_fraction=0.25,
                                missing="fill")
    assert meta["split"]["val_values"] == [str(d) for d in range(60, 80)], "the last quarter of the days"
    train = pq.read_table(shards.shard_paths(tmp_path / "out", "train", "parquet")).to_pandas()
    val = pq.read_table(shards.shard_paths(tmp_path / "out", "val", "parquet")).to_pandas()
    assert meta["cardinalities"] == {"city": 4}, "3 training cities + 0 for missing or unseen"
    assert {int(c[0]) for c in val["categorical"]} == {0}, "paris was never seen in training"
    x1 = np.stack(train["features"])[:, 0]
    assert not np.isnan(x1).any()
    assert meta["scaler"]["mean"][0] == pytest.approx(x1.mean(), abs=1e-5), "the hole was filled with the mean"
    assert meta["target_scaler"]["mean"][0] == pytest.approx(np.stack(train["labels"])[:, 0].mean(), abs=1e-4)
    assert meta["source"]["rows"] == N and len(meta["source"]["sha256"]) == 64

    given = table().assign(part=np.where(np.arange(N) % 4 == 0, "val", "train"))
    given.to_csv(tmp_path / "given.csv", index=False)
    meta = tabular.import_table(tmp_path / "given.csv", tmp_path / "given", target=["band"], task="multiclass",
                                categorical=["city"], drop=OTHER_TARGETS[:3] + OTHER_TARGETS[4:], split_by="part")
    assert meta["rows"] == {"train": 600, "val": 200} and meta["classes"] == ["high", "low", "mid"]
    meta = tabular.import_table(tmp_path / "given.csv", tmp_path / "random", target=["sunny"], task="binary",
                                categorical=["city", "part"], drop=["y", "y2", "band", "gt0", "gt1"], val_fraction=0.1)
    assert meta["rows"] == {"train": 720, "val": 80} and meta["positive_class"] == "yes"


def write_csv(tmp_path, df, name="bad.csv"):
    path = tmp_path / name
    df.to_csv(path, index=False)
    return str(path)


def test_bad_inputs_exit_2_with_their_message(tmp_path, capsys):
    df = table()[["x1", "x2", "city", "day", "y", "sunny"]]
    nan_target = df.assign(y=df.y.where(df.index != 7))
    empty = tmp_path / "empty.csv"
    empty.write_text("x1,y\n")
    (tmp_path / "notes.txt").write_text("x")
    cases = [
        ([str(tmp_path / "nope.csv"), "--target", "y"], "nope.csv does not exist"),
        ([str(tmp_path / "notes.txt"), "--target", "y"], "unknown file type '.txt'"),
        ([str(empty), "--target", "y"], "has no rows"),
        ([write_csv(tmp_path, df), "--target", "yy", "--categorical", "city,sunny"],
         "--target column 'yy' is not in the table. Did you mean 'y'?"),
        ([write_csv(tmp_path, df), "--target", "y"], "'city', 'sunny' are not numeric"),
        ([write_csv(tmp_path, nan_target, "nan.csv"), "--target", "y", "--categorical", "city,sunny"],
         "missing (null, NaN or infinite) values in 1 of 800 rows: 'y' 1. Re-run with --missing drop"),
        ([write_csv(tmp_path, nan_target, "nan.csv"), "--target", "y", "--categorical", "city,sunny",
          "--missing", "fill"], "target(s) 'y' have missing (null, NaN or infinite) values, which no fill"),
        ([write_csv(tmp_path, df.assign(x2=df.x2.where(df.index % 2 == 0, np.inf)), "inf.csv"), "--target", "y",
          "--categorical", "city,sunny"], "in 400 of 800 rows: 'x2' 400."),
        ([write_csv(tmp_path, df.assign(day=1), "one.csv"), "--target", "y", "--categorical", "city,sunny",
          "--split-by", "day"], "--split-by column 'day' has one value ('1')"),
        ([write_csv(tmp_path, df), "--target", "y", "--categorical", "city,sunny", "--split-by", "dya"],
         "Did you mean 'day'?"),
    ]
    for args, message in cases:
        code = cli.main(["data", "import", *args, "--task", "regression", "--out", str(tmp_path / "out")])
        err = capsys.readouterr().err
        assert code == 2 and message in err, (args, err)
        assert "Traceback" not in err
    code = cli.main(["data", "import", write_csv(tmp_path, df), "--target", "x2", "--task", "binary",
                     "--categorical", "city,sunny", "--out", str(tmp_path / "out")])
    assert code == 2 and "--task binary needs a target with two values" in capsys.readouterr().err
    code = cli.main(["data", "import", write_csv(tmp_path, df), "--target", "x2", "--task", "multilabel",
                     "--categorical", "city,sunny", "--out", str(tmp_path / "out")])
    assert code == 2 and "needs 0/1 targets" in capsys.readouterr().err


def test_a_spec_must_fit_the_tables_task(csv_file, tmp_path):
    import_task(csv_file, tmp_path / "reg", "regression")
    base = ["search.num_samples=1", f"data.path={tmp_path / 'reg'}"]
    spec.load("search_spaces/tabular_asha.yaml", base)   # fits
    with pytest.raises(spec.SpecError) as err:
        spec.load("search_spaces/tabular_asha.yaml", base + ["metric=val_auc", "mode=max", "fixed.loss=focal"])
    text = "\n".join(err.value.problems)
    assert "fixed.loss: 'focal' does not fit this regression table" in text
    assert "metric: a regression table reports val_loss, val_mae, val_rmse, val_r2, train_loss" in text
    with pytest.raises(spec.SpecError, match="holds tabular data, but the spec's workload is glideator"):
        spec.load("search_spaces/glideator_asha_random.yaml", [f"data.path={tmp_path / 'reg'}"])


def test_data_import_cli_writes_a_dataset(csv_file, tmp_path, capsys):
    assert cli.main(["data", "import", str(csv_file), "--target", "band", "--task", "multiclass",
                     "--categorical", "city", "--drop", "y,y2,sunny,gt0,gt1", "--split-by", "day",
                     "--out", str(tmp_path / "d")]) == 0
    assert "wrote tabular data" in capsys.readouterr().out
    meta = json.loads((tmp_path / "d/meta.json").read_text())
    assert meta["feature_names"] == ["x1", "x2"] and meta["categorical_names"] == ["city"]


def test_missing_values_are_dropped_or_filled_when_asked(tmp_path):
    df = table()
    df.loc[[3, 5], "x1"] = np.nan
    df.loc[9, "y"] = np.inf
    df.to_csv(tmp_path / "holes.csv", index=False)
    common = dict(target=["y"], task="regression", categorical=["city"], drop=OTHER_TARGETS[1:])
    dropped = tabular.import_table(tmp_path / "holes.csv", tmp_path / "dropped", missing="drop", **common)
    assert sum(dropped["rows"].values()) == N - 3 and dropped["missing"] == "drop"
    for split in ("train", "val"):
        rows = pq.read_table(shards.shard_paths(tmp_path / "dropped", split, "parquet")).to_pandas()
        assert np.isfinite(np.stack(rows["features"])).all() and np.isfinite(np.stack(rows["labels"])).all()
    with pytest.raises(shards.DataError, match="in 3 of 800 rows: 'y' 1, 'x1' 2"):
        tabular.import_table(tmp_path / "holes.csv", tmp_path / "refused", **common)
