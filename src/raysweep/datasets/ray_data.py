"""A raysweep dataset's splits in Ray: kept in the object store, or streamed by Ray Data.

- `store_split`: read once here (the driver) and put in the object store, one Arrow table per
  shard (`StoredSplit`). A trial iterates those blocks each epoch with a `ray.get` per block and
  no Ray Data execution to plan: on 2 CPUs planning one cost about a second, per epoch and per
  trial, which is what made small sweeps slow to start (BENCHMARKS.md, "Start-up").
- `open_split`: a Ray Data stream over the shards (`ShardSource`), for a TorchTrainer's workers
  to split between them. Ray's `read_parquet` lists and samples the files again before each
  execution (13 s of a 17 s epoch on the bench's 214 shards); the source here hands Ray Data one
  read task per run of whole shards, read with the same reader as everywhere else.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Iterator

import numpy as np
import pyarrow as pa
import ray
import ray.data
from ray.data.block import BlockMetadata
from ray.data.datasource import Datasource, ReadTask

from raysweep.datasets import reading
from raysweep.datasets.reading import Shard

BLOCK_BYTES = 32 * 2**20   # a streamed block: big enough that Ray Data's cost per block vanishes
STORE_THREADS = 8          # shards the driver reads at once to keep a split (a bucket wants several)


@dataclass(frozen=True)
class StoredSplit:
    """A split held in the object store, one Arrow table per shard, in shard order.

    `to_ray_dataset` gives Ray Train the same blocks as a materialised Ray Dataset, to split
    between a TorchTrainer's workers.
    """

    blocks: tuple[ray.ObjectRef, ...]
    rows: int

    def tables(self, ahead: int = 1) -> Iterator[pa.Table]:
        for block in self.blocks:   # zero-copy on the node that holds it; another pulls it once
            yield ray.get(block)

    def to_ray_dataset(self) -> ray.data.Dataset:
        return ray.data.from_arrow_refs(list(self.blocks))


def store_split(split: list[Shard], fmt: str, columns: list[str]) -> StoredSplit:
    """Read every shard of the split here, a few at once, and put each in the object store as
    it arrives: the driver holds a few shards at a time, never the whole split."""
    reader = reading.StreamedSplit(tuple(split), fmt, tuple(columns), threads=STORE_THREADS)
    blocks, rows = [], 0
    for table in reader.tables(ahead=STORE_THREADS):
        blocks.append(ray.put(table))
        rows += table.num_rows
    return StoredSplit(tuple(blocks), rows)


def store_first_rows(split: list[Shard], fmt: str, columns: list[str], rows: int) -> StoredSplit:
    """The split's first `rows` rows, in shard order, as one block in the object store (the
    subset an LR range test cycles over): only the shards that hold them are read."""
    tables, have = [], 0
    for shard in split:
        if have >= rows:
            break
        tables.append(reading.read_shard(shard.path, fmt, columns))
        have += tables[-1].num_rows
    head = pa.concat_tables(tables).slice(0, rows).combine_chunks()
    return StoredSplit((ray.put(head),), head.num_rows)


def object_store_bytes() -> int:
    """The object store of the smallest live node: a kept split must fit on every node that
    runs trials, since each pulls its own copy."""
    sizes = [node["Resources"].get("object_store_memory", 0) for node in ray.nodes() if node.get("Alive")]
    return int(min(sizes)) if sizes else 0


class ShardSource(Datasource):
    """Ray Data reads a split as whole shards: each read task reads a run of them in order."""

    def __init__(self, split: list[Shard], fmt: str, columns: list[str]):
        super().__init__()
        self._shards, self._fmt, self._columns = split, fmt, columns

    def estimate_inmemory_data_size(self) -> int:
        return sum(s.nbytes for s in self._shards)

    def get_read_tasks(self, parallelism: int, per_task_row_limit: int | None = None,
                       data_context=None) -> list[ReadTask]:
        runs = np.array_split(np.arange(len(self._shards)), max(1, min(parallelism, len(self._shards))))
        tasks = []
        for run in ([self._shards[i] for i in indices] for indices in runs):
            rows = None if any(s.rows is None for s in run) else sum(s.rows for s in run)
            metadata = BlockMetadata(num_rows=rows, size_bytes=sum(s.nbytes for s in run), exec_stats=None,
                                     input_files=tuple(s.path for s in run))
            tasks.append(ReadTask(partial(_read_run, [s.path for s in run], self._fmt, self._columns),
                                  metadata, per_task_row_limit=per_task_row_limit))
        return tasks


def _read_run(paths: list[str], fmt: str, columns: list[str]) -> Iterator[pa.Table]:
    """Shards joined into blocks of about BLOCK_BYTES: each block costs Ray Data a put, a get and
    bookkeeping, which on small shards (2 MB) took as long as reading them."""
    pending: list[pa.Table] = []
    for path in paths:
        pending.append(reading.read_shard(path, fmt, columns))
        if sum(t.nbytes for t in pending) >= BLOCK_BYTES:
            yield pa.concat_tables(pending)
            pending = []
    if pending:
        yield pa.concat_tables(pending)


def open_split(data_dir: str | Path, split: str, meta: dict, *,
               read_parallelism: int | None = None) -> ray.data.Dataset:
    """Stream one split's shards (Parquet or WebDataset) with the columns the loop reads.

    `read_parallelism` sets how many read tasks share the shards (Ray Data's
    `override_num_blocks`); None leaves the choice to Ray Data.
    """
    return stream(reading.split_shards(str(data_dir), split, meta), meta.get("format", "parquet"),
                  reading.columns_of(meta), read_parallelism)


def stream(split: list[Shard], fmt: str, columns: list[str], read_parallelism: int | None) -> ray.data.Dataset:
    """A Ray Data stream over shards already listed and sized (`reading.split_shards`)."""
    return ray.data.read_datasource(ShardSource(split, fmt, columns), override_num_blocks=read_parallelism)
