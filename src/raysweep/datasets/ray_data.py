"""Open a raysweep dataset's splits as Ray Data datasets with the columns the loop reads."""

from __future__ import annotations

from pathlib import Path

import ray.data

from raysweep.datasets import shards


def open_split(data_dir: str | Path, split: str, meta: dict, *,
               read_parallelism: int | None = None) -> ray.data.Dataset:
    """Stream one split's shards (Parquet or WebDataset) with the columns `meta["columns"]` names.

    `read_parallelism` sets how many blocks Ray Data reads the split into (its
    `override_num_blocks`); None leaves the choice to Ray Data.

    WebDataset members are named `<key>.<column>.<ext>`; Ray's reader keeps the extension in the
    column name, so columns are renamed back to what the Parquet shards hold.
    """
    fmt = meta.get("format", "parquet")
    paths = shards.shard_paths(data_dir, split, fmt)
    columns = list(dict.fromkeys(meta["columns"].values()))
    if fmt == "parquet":
        return ray.data.read_parquet(paths, columns=columns, override_num_blocks=read_parallelism)
    ds = ray.data.read_webdataset(paths, decoder=True, include_paths=False,
                                  override_num_blocks=read_parallelism)
    names = {member: column for member, column in shards.tar_members(paths[0]).items() if column in columns}
    return ds.select_columns(list(names)).rename_columns(names)
