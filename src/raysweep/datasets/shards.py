"""Write and check sharded datasets: Parquet or WebDataset `.tar` shards plus `meta.json`.

Every dataset raysweep trains on has the same layout, whether a built-in generator or an
import wrote it::

    DIR/meta.json            feature names and groups, row counts, scaler fitted on train only
    DIR/train/part-00000.parquet   (or shard-00000.tar)
    DIR/val/part-00000.parquet

A dataset is a dict of equally long numpy arrays ("columns"). A column may hold one value per
row or a fixed-shape tensor per row: a vector (n, F), a sequence (n, T, F), a set per step
(n, T, N, F) with its mask (n, T, N). Parquet stores a tensor column as nested fixed-size lists,
one level per dimension, so the shard's own schema carries the shape; WebDataset stores one
`.npy` member per row and column. Floating-point tensors are written as float32; integer and
boolean ones (codes, masks) keep their type. Ray Data hands such columns to the training loop
as `(batch, *shape)` tensors without any per-row Python work (`batching.py`).

This module imports neither Ray nor torch, so the generators and `validate` stay fast.
"""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from raysweep.datasets import location
from raysweep.errors import UserError

FORMATS = ("parquet", "webdataset")
SPLITS = ("train", "val")
META_FILE = "meta.json"


class DataError(UserError):
    """A dataset on disk is missing, empty or unreadable; the message says how to fix it."""


def _tensor_chunk(chunk: pa.FixedSizeListArray) -> np.ndarray:
    """A Parquet tensor column (nested fixed-size lists) as one (rows, *shape) array: the flat
    values under all the list levels, viewed in the shape the levels' sizes give."""
    shape, values = [], chunk
    while pa.types.is_fixed_size_list(values.type):
        shape.append(values.type.list_size)
        values = values.flatten()   # honours the chunk's offset, unlike .values
    return values.to_numpy(zero_copy_only=False).reshape(len(chunk), *shape)


def column_values(column: pa.ChunkedArray) -> np.ndarray:
    """A column of Arrow chunks as one numpy array of (rows, *shape), writable, without work per row."""
    if not column.chunks:
        return np.empty(0)
    parts = []
    for chunk in column.chunks:
        if pa.types.is_fixed_size_list(chunk.type):   # a tensor column (Parquet)
            parts.append(_tensor_chunk(chunk))
        elif isinstance(chunk.type, pa.ExtensionType):   # Ray's tensor type (WebDataset .npy)
            parts.append(np.asarray(chunk.to_numpy()))
        else:
            parts.append(chunk.to_numpy(zero_copy_only=False))
    array = parts[0] if len(parts) == 1 else np.concatenate(parts)
    # Zero-copy views of the object store are read-only; an in-place op in a workload must not
    # reach shared memory, so such a block is copied once (a memcpy, cheap next to a batch).
    return array if array.flags.writeable else array.copy()


def write_split(columns: dict[str, np.ndarray], out_dir: Path, split: str, *,
                fmt: str = "parquet", rows_per_shard: int = 8192) -> int:
    """Write one split as shards; returns the number of shards written.

    Shards an earlier run left in the split's folder are removed first: fewer shards this time
    would otherwise leave old rows that the readers (which list the folder) would still read.
    """
    if fmt not in FORMATS:
        raise DataError(f"unknown data format {fmt!r}; known: {', '.join(FORMATS)}")
    n_rows = len(next(iter(columns.values())))
    split_dir = Path(out_dir) / split
    split_dir.mkdir(parents=True, exist_ok=True)
    for old in [*split_dir.glob("part-*.parquet"), *split_dir.glob("shard-*.tar")]:
        old.unlink()
    n_shards = max(1, -(-n_rows // rows_per_shard))
    for i in range(n_shards):
        part = {k: v[i * rows_per_shard:(i + 1) * rows_per_shard] for k, v in columns.items()}
        if fmt == "parquet":
            pq.write_table(_to_arrow(part), split_dir / f"part-{i:05d}.parquet")
        else:
            _write_tar(part, split_dir / f"shard-{i:05d}.tar", first_key=i * rows_per_shard)
    return n_shards


def _to_arrow(columns: dict[str, np.ndarray]) -> pa.Table:
    return pa.table({name: _arrow_column(values) for name, values in columns.items()})


def _tensor_values(values: np.ndarray) -> np.ndarray:
    """Floating-point tensors as float32 (what the loop trains in); codes and masks as they are."""
    return values.astype(np.float32, copy=False) if np.issubdtype(values.dtype, np.floating) else values


def _arrow_column(values: np.ndarray) -> pa.Array:
    """One value per row as is; a tensor per row as nested fixed-size lists (innermost dimension
    first), built over one flat buffer without touching rows one by one."""
    if values.ndim == 1:
        return pa.array(_tensor_values(values))
    array = pa.array(np.ascontiguousarray(_tensor_values(values)).reshape(-1))
    for width in reversed(values.shape[1:]):
        array = pa.FixedSizeListArray.from_arrays(array, width)
    return array


def _write_tar(columns: dict[str, np.ndarray], path: Path, first_key: int) -> None:
    """One tar member per sample and column, named `<key>.<column>.npy` (or `.cls` for integer scalars).

    Member metadata is pinned (mtime 0, uid 0) so the same seed gives the same bytes.
    """
    n_rows = len(next(iter(columns.values())))
    with tarfile.open(path, "w", format=tarfile.USTAR_FORMAT) as tar:
        columns = {name: _tensor_values(values) for name, values in columns.items()}
        for row in range(n_rows):
            key = f"{first_key + row:09d}"
            for name, values in columns.items():
                value = values[row]
                if values.ndim == 1 and np.issubdtype(values.dtype, np.integer):
                    payload, suffix = str(int(value)).encode(), "cls"
                else:
                    buf = io.BytesIO()
                    np.save(buf, np.asarray(value), allow_pickle=False)
                    payload, suffix = buf.getvalue(), "npy"
                info = tarfile.TarInfo(f"{key}.{name}.{suffix}")
                info.size, info.mtime, info.mode = len(payload), 0, 0o644
                tar.addfile(info, io.BytesIO(payload))


def write_dataset(out_dir: str | Path, splits: dict[str, dict[str, np.ndarray]], *, fmt: str = "parquet",
                  rows_per_shard: int = 8192, **meta) -> dict:
    """Write every split and a meta.json that lists their columns and rows; returns the meta.

    The shortest way for a user's workload to write its data (its `DATA.write`):

        shards.write_dataset(out_dir, {"train": {"x": x_train, "labels": y_train}, "val": {...}},
                             fmt=fmt, workload="mine", feature_names=[...])

    Columns are numpy arrays (or CPU tensors) of equal length; `meta` adds what the workload's
    `build_model` reads (sizes, scalers fitted on train).
    """
    for split in SPLITS:
        if split not in splits:
            raise DataError(f"write_dataset: the {split!r} split is missing (give {', '.join(SPLITS)})")
    arrays = {split: {name: np.asarray(values) for name, values in columns.items()}
              for split, columns in splits.items()}
    _check_splits(arrays)
    for split, columns in arrays.items():
        write_split(columns, Path(out_dir), split, fmt=fmt, rows_per_shard=rows_per_shard)
    names = list(arrays["train"])
    meta = {"format": fmt, "columns": dict(zip(names, names)), "feature_names": [],
            "rows": {split: len(next(iter(columns.values()))) for split, columns in arrays.items()}, **meta}
    write_meta(Path(out_dir), meta)
    return meta


def _check_splits(splits: dict[str, dict[str, np.ndarray]]) -> None:
    """Every split non-empty, its columns equally long, numeric or boolean, and of the same
    names and row shapes as train's: what the shards and the training loop assume."""
    train = splits["train"]
    for split, columns in splits.items():
        where = f"write_dataset: {split}"
        if not columns:
            raise DataError(f"{where} has no columns")
        lengths = {name: len(values) for name, values in columns.items()}
        if len(set(lengths.values())) > 1:
            raise DataError(f"{where}: columns differ in length ({', '.join(f'{k} {v}' for k, v in lengths.items())})")
        if not next(iter(lengths.values())):
            raise DataError(f"{where} has no rows")
        for name, values in columns.items():
            if values.dtype.kind not in "biuf":
                raise DataError(f"{where}.{name}: {values.dtype} values; columns hold numbers or booleans "
                                "of one fixed shape per row (ragged rows: pad them and add a mask)")
        if set(columns) != set(train):
            raise DataError(f"{where} has columns {sorted(columns)}, train has {sorted(train)}")
        for name, values in columns.items():
            if values.shape[1:] != train[name].shape[1:]:
                raise DataError(f"{where}.{name}: rows of shape {values.shape[1:]}, train's are {train[name].shape[1:]}")


def standardisation(features: np.ndarray) -> tuple[list[float], list[float]]:
    """Per-feature mean and std (std floored so constant features do not divide by zero)."""
    mean = features.astype(np.float64).mean(axis=0)
    std = np.maximum(features.astype(np.float64).std(axis=0), 1e-6)
    return [round(float(x), 6) for x in mean], [round(float(x), 6) for x in std]


def label_column(meta: dict) -> str:
    """The column a dataset's labels are in: "labels", or the target `raysweep data describe` named."""
    return meta.get("columns", {}).get("labels", "labels")


def write_meta(out_dir: Path, meta: dict) -> Path:
    path = Path(out_dir) / META_FILE
    path.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    return path


def read_meta(data_dir: str | Path, *, make_hint: str = "") -> dict:
    """Load `meta.json` and check that each split has shards of the recorded format.

    Raises:
        DataError: naming the missing piece and, where known, the command that makes it.
    """
    hint = f" Create it with: {make_hint}" if make_hint else ""
    meta_path = location.join(data_dir, META_FILE)
    try:
        location.reach(data_dir, "data.path", write=False)
    except UserError as exc:
        raise DataError(exc.problems) from None
    try:
        if not location.exists(data_dir, directory=True):
            raise DataError(f"data directory {str(data_dir)!r} does not exist.{hint}")
        if not location.exists(meta_path):
            raise DataError(f"{meta_path} is missing; is {str(data_dir)!r} a raysweep dataset?{hint}")
        meta = json.loads(location.read_text(meta_path))
        for split in SPLITS:
            if not shard_paths(data_dir, split, meta.get("format", "parquet")):
                raise DataError(f"{location.join(data_dir, split)} holds no {meta.get('format')} shards.{hint}")
    except json.JSONDecodeError as exc:
        raise DataError(f"{meta_path} is not valid JSON ({exc}); regenerate the dataset.{hint}") from None
    except (OSError, ValueError) as exc:   # an unknown scheme, a bucket, credentials or server out of reach
        if isinstance(exc, DataError):
            raise
        raise DataError(f"cannot read {str(data_dir)!r} ({location.storage_error(exc)}). {location.URI_HELP}") from None
    return meta


def shard_paths(data_dir: str | Path, split: str, fmt: str) -> list[str]:
    """A split's shard files, sorted (local paths, or URIs for a dataset at a URI)."""
    return location.files(location.join(data_dir, split), ".parquet" if fmt == "parquet" else ".tar")
