"""A dataset is checked against its meta.json before Ray starts: structure, rows, NaN, nulls."""

from __future__ import annotations

import io
import tarfile

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from raysweep import cli
from raysweep.datasets import inspection, shards

from conftest import write_spec


def dataset(tmp_path, fmt="parquet", n=40, **columns):
    x = np.arange(n * 3, dtype=np.float32).reshape(n, 3)
    y = np.arange(n, dtype=np.float32)[:, None]
    split = {"features": x, "labels": y, **columns}
    return tmp_path / "d", shards.write_dataset(tmp_path / "d", {"train": split, "val": split}, fmt=fmt,
                                                rows_per_shard=10, workload="glideator")


@pytest.mark.parametrize("fmt", ["parquet", "webdataset"])
def test_a_clean_dataset_passes(tmp_path, fmt):
    path, meta = dataset(tmp_path, fmt)
    found = inspection.inspect(path, meta)
    assert found.problems == [] and found.rows == {"train": 40, "val": 40}


@pytest.mark.parametrize("fmt", ["parquet", "webdataset"])
def test_nan_and_infinities_are_counted_with_their_rows(tmp_path, fmt):
    x = np.zeros((40, 5, 2), np.float32)
    x[3, 1, 1] = np.nan
    x[7] = np.inf
    path, meta = dataset(tmp_path, fmt, sequence=x)
    (problem,) = [p for p in inspection.inspect(path, meta).problems if "train" in p]
    assert problem.startswith("the train split's column 'sequence' holds 11 NaN or infinite values in 2 rows "
                              "(all 40 rows checked)")


def test_a_sample_says_how_much_it_saw(tmp_path, monkeypatch):
    monkeypatch.setattr(inspection, "SAMPLE_ROWS", 15)
    x = np.zeros((40, 2), np.float32)
    x[2, 0] = np.nan
    path, meta = dataset(tmp_path, x2=x)
    assert "(in a sample of 20 of 40 rows)" in inspection.inspect(path, meta).problems[0]


def test_shards_that_disagree_with_meta_json_are_named(tmp_path):
    path, meta = dataset(tmp_path)
    shard = shards.shard_paths(path, "train", "parquet")[1]
    table = pq.read_table(shard)
    pq.write_table(table.drop_columns(["labels"]), shard)
    third = shards.shard_paths(path, "train", "parquet")[2]
    pq.write_table(pq.read_table(third).set_column(0, "features", pa.array(np.zeros(10))), third)
    problems = inspection.inspect(path, meta).problems
    assert any(p.startswith(f"shard {shard} has no column 'labels'") for p in problems), problems
    assert any(p.startswith(f"shard {third}: column 'features' is double, the split's first shard has "
                            "fixed_size_list") for p in problems), problems

    path, meta = dataset(tmp_path / "rows")
    shards.write_split({"features": np.zeros((5, 3), np.float32), "labels": np.zeros((5, 1), np.float32)}, path, "val")
    assert inspection.inspect(path, meta).problems == [
        "the val shards hold 5 rows, meta.json says 40: the shards changed after the dataset was written; "
        "regenerate or re-import the dataset"]


def test_nulls_come_from_parquet_statistics(tmp_path):
    path, meta = dataset(tmp_path)
    shard = shards.shard_paths(path, "val", "parquet")[0]
    table = pq.read_table(shard)
    pq.write_table(table.set_column(1, "labels", pa.array([[None]] + [[1.0]] * 9, pa.list_(pa.float32(), 1))), shard)
    assert any("the val split's column 'labels' has 1 null values (all 40 rows checked)" in p
               for p in inspection.inspect(path, meta).problems)


def test_validate_refuses_bad_data_and_batches_larger_than_the_split(tmp_path, raw_spec, capsys):
    data = tmp_path / "g"
    assert cli.main(["data", "glideator", "--out", str(data), "--sites", "2", "--days", "40"]) == 0
    meta = shards.read_meta(data)
    raw_spec["data"]["path"] = str(data)
    raw_spec["fixed"]["batch_size"] = meta["rows"]["train"] + 1
    assert cli.main(["validate", str(write_spec(tmp_path, raw_spec))]) == 2
    err = capsys.readouterr().err
    assert f"fixed.batch_size: a batch of {meta['rows']['train'] + 1} rows is more than the whole train split" in err
    raw_spec["fixed"]["batch_size"] = 8
    raw_spec["lr_find"] = {"subset_rows": 4}
    assert cli.main(["validate", str(write_spec(tmp_path, raw_spec))]) == 2
    assert "lr_find.subset_rows: the LR range test trains on 4 rows" in capsys.readouterr().err
    # The range test trains the baseline's batch (a choice's first value), unless it runs over them.
    raw_spec["fixed"].pop("batch_size")
    raw_spec["params"]["batch_size"] = {"type": "choice", "values": [8, 16]}
    raw_spec["lr_find"] = {"subset_rows": 12}
    assert cli.main(["validate", str(write_spec(tmp_path, raw_spec))]) == 0
    raw_spec["lr_find"]["over"] = ["batch_size"]
    assert cli.main(["validate", str(write_spec(tmp_path, raw_spec))]) == 2
    assert "fewer than one batch of 16" in capsys.readouterr().err
    del raw_spec["lr_find"], raw_spec["params"]["batch_size"]
    raw_spec["fixed"]["batch_size"] = 8

    shard = shards.shard_paths(data, "train", "parquet")[0]
    table = pq.read_table(shard)
    features = table["features"].combine_chunks()
    values = features.flatten().to_numpy().copy()
    values[5] = np.nan
    pq.write_table(table.set_column(table.column_names.index("features"), "features",
                                    pa.FixedSizeListArray.from_arrays(pa.array(values), features.type.list_size)), shard)
    assert cli.main(["validate", str(write_spec(tmp_path, raw_spec))]) == 2
    err = capsys.readouterr().err
    assert "data.path: the train split's column 'features' holds 1 NaN or infinite values in 1 rows" in err
    assert "Traceback" not in err


def test_odd_shards_are_reported_not_crashed_on(tmp_path):
    path, meta = dataset(tmp_path)
    assert inspection.inspect(path, {**meta, "columns": {}}).problems[0].startswith("meta.json names no columns")
    shard = shards.shard_paths(path, "train", "parquet")[0]
    table = pq.read_table(shard)
    features = pa.array([None] + [[1.0, 2.0, 3.0]] * 9, pa.list_(pa.float32(), 3))
    pq.write_table(table.set_column(0, "features", features), shard)
    (problem,) = inspection.inspect(path, meta).problems
    assert problem.startswith("the train split's column 'features' has 1 null values")

    tar_path, tar_meta = dataset(tmp_path / "tar", "webdataset")
    shard = shards.shard_paths(tar_path, "val", "webdataset")[0]
    with tarfile.open(shard) as tar:
        members = [(m, tar.extractfile(m).read()) for m in tar.getmembers()]
    with tarfile.open(shard, "w") as tar:   # as `tar -cf shard.tar .` writes it: ./names, a folder entry
        folder = tarfile.TarInfo("./")
        folder.type = tarfile.DIRTYPE
        tar.addfile(folder)
        for member, payload in members:
            member.name = "./" + member.name
            tar.addfile(member, io.BytesIO(payload))
    assert inspection.inspect(tar_path, tar_meta).problems == []
