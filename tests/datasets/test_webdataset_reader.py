"""WebDataset shards read column by column: the same table as the Parquet shards of the same rows.

Each row's values derive from its id (negative and multi-digit ones too, so `.cls` labels vary
in length), so a row out of place or a column decoded with the wrong dtype or shape shows.
"""

from __future__ import annotations

import io
import re
import tarfile

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from raysweep.datasets import ray_data, shards, webdataset

T, N, F = 4, 3, 2
N_ROWS, PER_SHARD = 70, 32   # three shards, the last one short


def rows(n: int = N_ROWS) -> dict[str, np.ndarray]:
    ids = np.arange(n, dtype=np.int64) * 37 - 500
    rng = np.random.default_rng(0)
    return {"id": ids,                                                                   # .cls
            "weight": ids / 7.0,                                                           # float64 -> float32 scalar
            "flag": ids % 3 == 0,                                                          # bool scalar (.npy)
            "vector": ids[:, None] + np.linspace(0, 1, 5),                                 # [5]
            "sequence": (ids[:, None, None] + rng.random((n, T, F))).astype(np.float32),   # [T, F]
            "detections": ids[:, None, None, None] + rng.random((n, T, N, F)),             # [T, N, F]
            "mask": rng.random((n, T, N)) < 0.5,                                           # bool [T, N]
            "counts": rng.integers(-3, 100, (n, T, N)).astype(np.int16),                   # int [T, N]
            "codes": np.repeat(ids[:, None], 3, axis=1)}                                   # int64 [3]


@pytest.fixture
def both(tmp_path):
    """The same rows as Parquet and as WebDataset shards (tmp_path/FORMAT/train):
    (parquet paths, tar paths)."""
    data = rows()
    for fmt in shards.FORMATS:
        shards.write_split(data, tmp_path / fmt, "train", fmt=fmt, rows_per_shard=PER_SHARD)
    return tuple(shards.shard_paths(tmp_path / fmt, "train", fmt) for fmt in shards.FORMATS)


def test_each_shard_reads_as_its_parquet_twin(both):
    parquet, tars = both
    assert len(tars) == len(parquet) == 3
    for parquet_path, tar_path in zip(parquet, tars):
        expected, table = pq.read_table(parquet_path), webdataset.read_tar(tar_path)
        assert table.schema.to_string() == expected.schema.to_string()   # names, order, types, field names
        assert table.equals(expected)
    whole = pa.concat_tables(webdataset.read_tar(p) for p in tars)
    values = shards.column_values(whole["detections"])
    assert values.shape == (N_ROWS, T, N, F) and values.dtype == np.float32
    assert np.array_equal(np.floor(values[:, 2, 1, 0]), rows()["id"])
    assert shards.column_values(whole["id"]).tolist() == rows()["id"].tolist()


def test_narrow_integer_labels_read_as_int64(tmp_path):
    """A `.cls` label is text without a width: int32 and uint8 scalars come back as int64."""
    data = {"site": np.arange(5, dtype=np.int32) * 300, "small": np.arange(5, dtype=np.uint8), "x": np.ones(5)}
    shards.write_split(data, tmp_path, "train", fmt="webdataset")
    table = webdataset.read_tar(shards.shard_paths(tmp_path, "train", "webdataset")[0])
    assert table.schema == pa.schema({"site": pa.int64(), "small": pa.int64(), "x": pa.float32()})
    assert table["site"].to_pylist() == [0, 300, 600, 900, 1200] and table["small"].to_pylist() == [0, 1, 2, 3, 4]


def test_column_selection_keeps_the_order_asked(both):
    parquet, tars = both
    picked = ["mask", "id", "vector"]
    table = webdataset.read_tar(tars[1], columns=picked)
    assert table.column_names == picked
    assert table.equals(pq.read_table(parquet[1], columns=picked))
    with pytest.raises(shards.DataError, match="no column 'nope'; its members hold id, weight, flag"):
        webdataset.read_tar(tars[1], columns=["id", "nope"])


def test_a_uri_reads_like_a_path(both):
    _, tars = both
    assert webdataset.read_tar(f"file://{tars[0]}").equals(webdataset.read_tar(tars[0]))


def members(path) -> list[tuple[tarfile.TarInfo, bytes]]:
    with tarfile.open(path) as tar:
        return [(info, tar.extractfile(info).read()) for info in tar]


def rewrite(path, entries, fmt=tarfile.USTAR_FORMAT) -> bytes:
    """A tar of `entries` ((TarInfo, payload) pairs) written to `path`; returns its bytes."""
    with tarfile.open(path, "w", format=fmt) as tar:
        for info, payload in entries:
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload) if info.isfile() else None)
    return path.read_bytes()


def test_the_writers_shards_take_the_vectorised_path(both):
    """The writer's layout is checked in one numpy pass; another layout is walked with tarfile."""
    _, tars = both
    buf = np.fromfile(tars[0], dtype=np.uint8)
    regular, walked = webdataset._regular_layout(buf), webdataset._walk(buf, "x")
    assert regular is not None and [c.name for c in regular] == [c.name for c in walked]
    for fast, slow in zip(regular, walked):
        assert np.array_equal(fast.offsets, slow.offsets) and np.array_equal(fast.sizes, slow.sizes)


@pytest.mark.parametrize("fmt", [tarfile.PAX_FORMAT, tarfile.GNU_FORMAT])
def test_another_layout_reads_the_same(both, tmp_path, fmt):
    """A directory entry first and long member names (ustar prefix, pax or GNU headers)."""
    parquet, tars = both
    folder = tarfile.TarInfo("./" + "d" * 120)
    folder.type = tarfile.DIRTYPE
    entries = [(folder, b"")]
    for info, payload in members(tars[0]):
        info.name = f"{folder.name}/{info.name}"
        entries.append((info, payload))
    path = tmp_path / "other.tar"
    assert webdataset._regular_layout(np.frombuffer(rewrite(path, entries, fmt), np.uint8)) is None
    assert webdataset.read_tar(path).equals(pq.read_table(parquet[0]))


def cut_points(path) -> dict[str, int]:
    infos = [info for info, _ in members(path)]
    return {"mid payload": infos[40].offset_data + 50, "mid header": infos[41].offset + 100,
            "at a member": infos[42].offset, "at a sample": infos[9 * 3].offset,
            "before the end marker": infos[-1].offset_data + 512}


@pytest.mark.parametrize("where", ["mid payload", "mid header", "at a member", "at a sample", "before the end marker"])
def test_a_truncated_shard_is_a_data_error(both, tmp_path, where):
    _, tars = both
    cut = tmp_path / "cut.tar"
    cut.write_bytes(open(tars[0], "rb").read()[:cut_points(tars[0])[where]])
    with pytest.raises(shards.DataError, match=r"cut\.tar.*(truncated|corrupt|member)"):
        webdataset.read_tar(cut)


def test_a_corrupt_header_is_a_data_error(both, tmp_path):
    _, tars = both
    data = bytearray(open(tars[0], "rb").read())
    infos = [info for info, _ in members(tars[0])]
    data[infos[50].offset + 130] ^= 0x11   # a size digit: the header's checksum no longer holds
    (tmp_path / "bad.tar").write_bytes(bytes(data))
    with pytest.raises(shards.DataError, match=re.escape(f"corrupt or truncated at byte {infos[50].offset}")):
        webdataset.read_tar(tmp_path / "bad.tar")
    (tmp_path / "empty.tar").write_bytes(b"")
    with pytest.raises(shards.DataError, match="empty.tar is not a readable tar"):
        webdataset.read_tar(tmp_path / "empty.tar")


def test_a_sample_missing_a_member_is_a_data_error(both, tmp_path):
    _, tars = both
    kept = [(info, payload) for info, payload in members(tars[0]) if info.name != "000000005.mask.npy"]
    rewrite(tmp_path / "gap.tar", kept)
    with pytest.raises(shards.DataError, match=re.escape("sample 000000005 lacks column(s) ['mask']")):
        webdataset.read_tar(tmp_path / "gap.tar")


def test_a_member_under_another_key_is_a_data_error(both, tmp_path):
    """Same sizes and places as the writer's layout, but sample 5's mask is named for sample 99."""
    _, tars = both
    entries = members(tars[0])
    for info, _ in entries:
        info.name = info.name.replace("000000005.mask", "000000099.mask")
    rewrite(tmp_path / "moved.tar", entries)
    with pytest.raises(shards.DataError, match=re.escape("sample 000000005 lacks column(s) ['mask', 'counts', 'codes']")):
        webdataset.read_tar(tmp_path / "moved.tar")


def test_rows_of_another_shape_are_a_data_error(both, tmp_path):
    _, tars = both
    entries = members(tars[0])
    for i, (info, _) in enumerate(entries):
        if info.name == "000000003.vector.npy":   # the fourth sample's vector has 4 values, not 5
            buffer = io.BytesIO()
            np.save(buffer, np.zeros(4, np.float32))
            entries[i] = (info, buffer.getvalue())
    rewrite(tmp_path / "ragged.tar", entries)
    with pytest.raises(shards.DataError, match=r"'vector', sample 000000003: float32 \(4,\), the first row holds float32 \(5,\)"):
        webdataset.read_tar(tmp_path / "ragged.tar")


@pytest.mark.slow
def test_ray_data_reads_the_same_rows_as_parquet(both, tmp_path, ray_session):
    columns = ["id", "sequence", "detections", "mask", "counts"]
    out = {}
    for fmt in shards.FORMATS:
        meta = {"format": fmt, "columns": {c: c for c in columns}}
        ds = ray_data.open_split(tmp_path / fmt, "train", meta, read_parallelism=2)
        out[fmt] = pa.concat_tables(ds.iter_batches(batch_size=None, batch_format="pyarrow")).sort_by("id")
    assert out["webdataset"].column_names == columns
    assert out["webdataset"].equals(out["parquet"])
    assert out["webdataset"].num_rows == N_ROWS
