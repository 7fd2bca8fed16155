"""`raysweep data describe DIR --target COL`: make a dataset of shards written elsewhere, in place.

Shards that another pipeline wrote (Parquet files, or WebDataset `.tar` shards as the webdataset
library writes them) in `DIR/train/` and `DIR/val/` (and `DIR/test/` for a held-out split) need
only a meta.json to be a raysweep dataset: which column is the target (`labels`, the role the
loop and the metrics read it by), the other columns, the rows of each split, the task. This writes
it beside them, reading Parquet footers and each tar shard once to count and check its rows;
nothing is copied. `validate` then checks the shards as it checks any dataset.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from raysweep.datasets import location, shards, webdataset
from raysweep.datasets.shards import META_FILE, DataError, write_meta

TASKS = ("regression", "binary", "multiclass", "multilabel")


def _format(data_dir: str, fmt: str) -> str:
    if fmt != "auto":
        return fmt
    for candidate in ("parquet", "webdataset"):
        if shards.shard_paths(data_dir, "train", candidate):
            return candidate
    raise DataError(f"{location.join(data_dir, 'train')} holds no .parquet or .tar shards; put the training shards "
                    f"there and the validation shards in {location.join(data_dir, 'val')}")


def _numeric(kind: pa.DataType) -> bool:
    """Numbers, booleans, or fixed-size lists of them: what becomes a tensor in a batch."""
    while pa.types.is_fixed_size_list(kind) or pa.types.is_list(kind):
        kind = kind.value_type
    return pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind)


def _columns_and_rows(paths: list[str], fmt: str, drop: set[str]) -> tuple[dict[str, pa.DataType], int]:
    """Each column's type (those not dropped) and the split's rows."""
    names, rows = None, 0
    for path in paths:
        if fmt == "parquet":
            with location.open_input(path) as stream:
                metadata = pq.read_metadata(stream)
            schema, count = metadata.schema.to_arrow_schema(), metadata.num_rows
        else:
            table = webdataset.read_tar(path)
            schema, count = table.schema, table.num_rows
        found = {f.name: f.type for f in schema if f.name not in drop}
        if names is not None and list(found) != list(names):
            raise DataError(f"shard {path} has columns {list(found)}, the split's first has {list(names)}; give every "
                            "shard the same columns")
        names, rows = found, rows + count
    return names or {}, rows


def describe(data_dir: str | Path, *, target: str, task: str | None = None, fmt: str = "auto",
             drop: tuple[str, ...] = (), overwrite: bool = False) -> dict:
    """Write `DIR/meta.json` for the shards in its split folders; returns the meta.

    Raises:
        DataError: no shards, splits with other columns, a target no split holds, a meta.json
            already there (without `overwrite`).
    """
    data_dir = str(data_dir)
    if location.is_uri(data_dir):
        raise DataError(f"{data_dir}: describe a local directory (it writes meta.json beside the shards), then upload "
                        "its meta.json to the bucket")
    if not Path(data_dir).is_dir():
        raise DataError(f"{data_dir}: no such directory")
    if location.exists(location.join(data_dir, META_FILE)) and not overwrite:
        raise DataError(f"{location.join(data_dir, META_FILE)} exists already: {data_dir} is a dataset; "
                        "add --overwrite to describe it again")
    fmt = _format(data_dir, fmt)
    found = {}
    for split in (*shards.SPLITS, "test"):
        paths = shards.shard_paths(data_dir, split, fmt)
        if not paths:
            if split in shards.SPLITS:
                raise DataError(f"{location.join(data_dir, split)} holds no {fmt} shards; put the {split} shards there")
            continue
        found[split] = _columns_and_rows(paths, fmt, set(drop))
    columns = found["train"][0]
    for split, (names, _) in found.items():
        if set(names) != set(columns):
            raise DataError(f"the {split} split has columns {sorted(names)}, train has {sorted(columns)}")
    if target not in columns:
        raise DataError(f"--target {target}: the shards hold no such column; they hold {', '.join(columns)}")
    if task is not None and task not in TASKS:
        raise DataError(f"--task {task}: one of {', '.join(TASKS)}")
    text = [name for name, kind in columns.items() if not _numeric(kind)]
    if text:
        raise DataError(f"column(s) {', '.join(text)} hold {columns[text[0]]} values, and a batch holds tensors of numbers; "
                        f"leave them out with --drop {','.join(text)}, or encode them as numbers in the shards")
    others = [c for c in columns if c != target]
    if "labels" in others:
        raise DataError(f"a column is named 'labels' but the target is {target!r}: raysweep reads the target as the "
                        "labels; make 'labels' the --target, or leave it out with --drop labels")
    meta = {"format": fmt, "columns": {"labels": target, **{c: c for c in others}}, "feature_names": others,
            "target_names": [target], "rows": {split: rows for split, (_, rows) in found.items()},
            "described": True, **({"task": task} if task else {})}
    write_meta(Path(data_dir), meta)
    return meta
