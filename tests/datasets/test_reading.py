"""Reading a split's shards whole: sizes from footers, and the stream a trial reads ahead."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from raysweep.datasets import glideator, reading, shards

from conftest import TINY


@pytest.fixture(scope="module")
def both_formats(tmp_path_factory):
    """The tiny dataset as Parquet and as WebDataset shards (several shards per split)."""
    out = tmp_path_factory.mktemp("formats")
    for fmt in shards.FORMATS:
        glideator.write(out / fmt, fmt=fmt, **TINY)
    return out


def whole_split(data_dir, meta) -> pa.Table:
    return pq.read_table(shards.shard_paths(data_dir, "train", "parquet"), columns=reading.columns_of(meta))


def test_footers_give_each_shards_rows_and_about_its_size(both_formats):
    data_dir = both_formats / "parquet"
    meta = shards.read_meta(data_dir)
    found = reading.split_shards(str(data_dir), "train", meta)
    assert len(found) > 2 and sum(s.rows for s in found) == meta["rows"]["train"]
    for shard in found:
        table = reading.read_shard(shard.path, "parquet", reading.columns_of(meta))
        assert table.num_rows == shard.rows
        assert 0.8 * table.nbytes <= shard.nbytes <= 1.5 * table.nbytes   # what `auto` weighs


def test_tar_shards_are_sized_by_their_files_and_read_as_the_parquet_ones(both_formats):
    meta = shards.read_meta(both_formats / "webdataset")
    found = reading.split_shards(str(both_formats / "webdataset"), "train", meta)
    tables = [reading.read_shard(s.path, "webdataset", reading.columns_of(meta)) for s in found]
    assert all(s.rows is None and s.nbytes >= t.nbytes for s, t in zip(found, tables))
    parquet = whole_split(both_formats / "parquet", meta)
    streamed = pa.concat_tables(tables)
    for name in parquet.column_names:   # tar labels come back int64 (webdataset.py says why)
        assert streamed[name].to_pylist() == parquet[name].to_pylist()


@pytest.mark.parametrize("threads, ahead", [(1, 1), (2, 1), (3, 8), (8, 100)])
def test_a_streamed_pass_gives_every_shard_once_in_order(both_formats, threads, ahead):
    data_dir = both_formats / "parquet"
    meta = shards.read_meta(data_dir)
    found = reading.split_shards(str(data_dir), "train", meta)
    split = reading.StreamedSplit(tuple(found), "parquet", tuple(reading.columns_of(meta)), threads)
    assert isinstance(split, reading.SplitBlocks)
    for _ in range(2):   # every pass reads the shards again, the same
        tables = list(split.tables(ahead=ahead))
        assert [t.num_rows for t in tables] == [s.rows for s in found]
        assert pa.concat_tables(tables).equals(whole_split(data_dir, meta))


@pytest.mark.parametrize("fmt", shards.FORMATS)
def test_sizes_are_what_memory_holds_not_what_the_encoding_takes(tmp_path, fmt):
    """A column of few distinct values encodes to almost nothing on disk; `auto` must weigh the
    rows it will hold, and a tar shard its columns' values, not its headers and padding."""
    rng = np.random.default_rng(0)
    flags = (rng.random((4000, 64)) < 0.5).astype(np.float32)      # 0/1: Parquet's dictionary encoding
    labels = rng.integers(0, 3, 4000)
    shards.write_dataset(tmp_path, {s: {"x": flags, "y": labels} for s in shards.SPLITS}, fmt=fmt,
                         rows_per_shard=1000, workload="test")
    meta = shards.read_meta(tmp_path)
    found = reading.split_shards(str(tmp_path), "train", meta)
    held = sum(reading.read_shard(s.path, fmt, ["x", "y"]).nbytes for s in found)
    assert 0.8 * held <= sum(s.nbytes for s in found) <= 1.25 * held


def test_a_shard_gone_while_a_split_streams_is_one_clear_error(tmp_path):
    glideator.write(tmp_path, **TINY)
    meta = shards.read_meta(tmp_path)
    found = reading.split_shards(str(tmp_path), "train", meta)
    Path(found[1].path).unlink()   # deleted after the sweep listed it
    split = reading.StreamedSplit(tuple(found), "parquet", tuple(reading.columns_of(meta)))
    with pytest.raises(shards.DataError, match=f"shard {found[1].path} cannot be read"):
        list(split.tables())
