"""Multi-input batches: tensor columns of several shapes, through shards, Ray Data and batching.

A row of the brake/coast example holds a sequence [T, F], a set per step [T, N, F] with its
boolean mask [T, N] and several label heads; each must arrive as one (batch, *shape) tensor with
its type, and every column of a batch must hold the same rows.
"""

from __future__ import annotations

import re

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from raysweep.datasets import batching, ray_data, shards

T, N, F, HEADS = 5, 3, 4, 2


def rows(n: int) -> dict[str, np.ndarray]:
    """Each row's tensors hold its own id, so a batch shows whether its columns stayed aligned."""
    ids = np.arange(n, dtype=np.int64)
    rng = np.random.default_rng(0)
    return {"id": ids,
            "sequence": ids[:, None, None] + np.zeros((n, T, F)),                       # float64 -> float32
            "detections": (ids[:, None, None, None] + np.zeros((n, T, N, F))).astype(np.float32),
            "mask": rng.random((n, T, N)) < 0.5,
            "codes": np.repeat(ids[:, None], 3, axis=1).astype(np.int64),
            "labels": (ids[:, None] % 2 + np.zeros((n, HEADS))).astype(np.float32)}


def test_parquet_schema_carries_each_shape(tmp_path):
    shards.write_split(rows(10), tmp_path, "train")
    schema = pq.read_schema(next((tmp_path / "train").glob("*.parquet")))
    assert str(schema.field("detections").type) == (
        "fixed_size_list<element: fixed_size_list<element: fixed_size_list<element: float>[4]>[3]>[5]")
    assert str(schema.field("mask").type).endswith("element: bool>[3]>[5]")
    table = pq.read_table(tmp_path / "train")
    batch = batching.arrow_to_torch(table.slice(3, 4))   # a slice: offsets must be honoured
    assert batch["detections"].shape == (4, T, N, F) and batch["detections"].dtype == torch.float32
    assert batch["sequence"].dtype == torch.float32 and batch["codes"].dtype == torch.int64
    assert batch["mask"].dtype == torch.bool and batch["mask"].shape == (4, T, N)
    assert batch["detections"][:, 0, 0, 0].tolist() == [3, 4, 5, 6]
    assert torch.equal(batch["mask"], torch.from_numpy(rows(10)["mask"][3:7]))


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["parquet", "webdataset"])
def test_tensor_columns_stream_through_ray_data(tmp_path, ray_session, fmt):
    data = rows(300)
    shards.write_split(data, tmp_path, "train", fmt=fmt, rows_per_shard=64)
    meta = {"format": fmt, "columns": {c: c for c in data}}
    ds = ray_data.open_split(tmp_path, "train", meta)
    blocks = ds.iter_batches(batch_size=None, batch_format="pyarrow")
    out = list(batching.torch_batches(blocks, batch_size=32, shuffle_buffer=100, seed=1))
    assert sorted(torch.cat([b["id"] for b in out]).tolist()) == list(range(300))
    for b in out:
        ids = b["id"]
        assert b["sequence"].shape[1:] == (T, F) and b["detections"].shape[1:] == (T, N, F)
        assert b["mask"].shape[1:] == (T, N) and b["labels"].shape[1:] == (HEADS,)
        assert b["mask"].dtype == torch.bool and b["detections"].dtype == torch.float32
        # every column of the batch holds the same rows, in the same order
        assert torch.equal(b["sequence"][:, -1, -1].long(), ids)
        assert torch.equal(b["detections"][:, 2, 1, 3].long(), ids)
        assert torch.equal(b["codes"][:, 1], ids)
        assert torch.equal(b["labels"][:, 1].long(), ids % 2)
        assert torch.equal(b["mask"], torch.from_numpy(data["mask"][ids.numpy()]))


def test_write_dataset_refuses_what_training_cannot_use(tmp_path):
    good = rows(8)
    cases = {
        "columns differ in length": {"train": {**good, "id": good["id"][:5]}, "val": good},
        "object values": {"train": {**good, "id": good["id"].astype(object)}, "val": good},
        "val has columns": {"train": good, "val": {k: v for k, v in good.items() if k != "mask"}},
        "val.sequence: rows of shape (5, 3)": {"train": good, "val": {**good, "sequence": good["sequence"][..., :3]}},
        "the 'val' split is missing": {"train": good},
        "val has no rows": {"train": good, "val": {k: v[:0] for k, v in good.items()}},
    }
    for message, splits in cases.items():
        with pytest.raises(shards.DataError, match=re.escape(message)):
            shards.write_dataset(tmp_path / "d", splits)
    meta = shards.write_dataset(tmp_path / "ok", {"train": good, "val": good}, workload="mine", task="binary")
    assert meta["rows"] == {"train": 8, "val": 8} and meta["columns"]["mask"] == "mask"
    assert shards.read_meta(tmp_path / "ok") == meta


@pytest.mark.parametrize("fmt", ["parquet", "webdataset"])
def test_rewriting_a_split_leaves_no_old_rows(tmp_path, fmt):
    shards.write_split(rows(20), tmp_path, "train", fmt=fmt, rows_per_shard=5)
    shards.write_split(rows(6), tmp_path, "train", fmt=fmt, rows_per_shard=5)
    assert len(shards.shard_paths(tmp_path, "train", fmt)) == 2


def test_floats_are_float32_in_both_formats(tmp_path):
    table = {"x": np.arange(4, dtype=np.float64), "labels": np.ones((4, 2))}
    shards.write_split(table, tmp_path, "train")
    schema = pq.read_schema(next((tmp_path / "train").glob("*.parquet")))
    assert str(schema.field("x").type) == "float" and str(schema.field("labels").type.value_type) == "float"
