"""Read a split's shards whole: their sizes from the footers, one Arrow table per shard, and a
stream that reads the next shards in threads while the loop trains on the current one.

The shards are already the unit of work: meta.json and the file listing say which files there
are, and each is read in one call (`pyarrow.parquet.read_table`, or the vectorised tar reader
in `webdataset.py`), into the same columns and types whatever the format.

`StreamedSplit` is how a trial streams a split too large to keep in the object store: on the
bench's 1.75 M-row dataset (BENCHMARKS.md, "Streaming") reading ahead in the trial's own process
ran at 1.2-1.5x a plain shard-after-shard pyarrow read, where Ray Data's streaming read reached
about half of it on 2 CPUs (a second process per read, a put and a get per block).

This module imports neither Ray nor torch.
"""

from __future__ import annotations

from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from itertools import islice
from typing import Iterator, Protocol, runtime_checkable

import pyarrow as pa
import pyarrow.parquet as pq

from raysweep.datasets import location, shards, webdataset

SIZE_THREADS = 8    # footers read at once: a bucket answers each in milliseconds, not microseconds
STREAM_THREADS = 2  # shards a streaming trial reads at once unless data.read_parallelism says


@dataclass(frozen=True)
class Shard:
    """One shard file and what it holds, as far as its footer (or its size) tells."""

    path: str
    rows: int | None    # None for a tar shard: only reading it counts its samples
    nbytes: int         # its columns' size in memory, estimated


@runtime_checkable
class SplitBlocks(Protocol):
    """A split a trial iterates as Arrow tables, one pass per epoch, in the same order each time."""

    def tables(self, ahead: int = 1) -> Iterator[pa.Table]:
        """One pass; `ahead`: blocks to have read before the loop asks (where reading is work)."""


def columns_of(meta: dict) -> list[str]:
    """The columns the training loop reads (meta's roles -> columns, each once)."""
    return list(dict.fromkeys(meta["columns"].values()))


def read_shard(path: str, fmt: str, columns: list[str]) -> pa.Table:
    """One shard's `columns` as an Arrow table (the same table for Parquet or WebDataset).

    Raises:
        DataError: the shard is gone or unreadable (deleted or rewritten since the sweep began).
    """
    if fmt != "parquet":
        return webdataset.read_tar(path, columns)
    try:
        return location.read_parquet([path], columns)
    except (OSError, pa.ArrowException) as exc:
        raise shards.DataError(f"shard {path} cannot be read ({type(exc).__name__}: {exc}); "
                               "regenerate the dataset, or check that every node can read it") from None


def _fixed_width(dtype: pa.DataType) -> float | None:
    """Bytes per row of a fixed-width type in memory (a tensor: its elements'), else None."""
    if pa.types.is_fixed_size_list(dtype):
        inner = _fixed_width(dtype.value_type)
        return None if inner is None else dtype.list_size * inner
    if pa.types.is_boolean(dtype):
        return 1 / 8
    try:
        return dtype.bit_width / 8
    except ValueError:   # strings and other variable widths
        return None


def _parquet_shard(path: str, columns: list[str]) -> Shard:
    """Rows from the footer, and the wanted columns' size in memory from their types (what
    Arrow will hold, not the encoded size on disk: dictionary and run-length encoding shrink a
    column of few distinct values many times). A variable-width column counts its chunks'
    uncompressed size."""
    with location.open_input(path) as stream:
        footer = pq.ParquetFile(stream).metadata
    schema = footer.schema.to_arrow_schema()
    nbytes = 0.0
    for name in columns:
        width = _fixed_width(schema.field(name).type)
        if width is not None:
            nbytes += width * footer.num_rows
            continue
        nbytes += sum(group.column(i).total_uncompressed_size
                      for group in (footer.row_group(g) for g in range(footer.num_row_groups))
                      for i in range(group.num_columns) if group.column(i).path_in_schema == name)
    return Shard(path, footer.num_rows, int(nbytes))


def _tar_shard(path: str, columns: list[str]) -> Shard:
    """Samples and the wanted columns' size in memory, from the first sample's headers and the
    shard's size (webdataset.estimate); a shard laid out otherwise counts its whole size."""
    found = webdataset.estimate(path, columns)
    if found is None:
        with location.open_input(path) as stream:
            return Shard(path, None, stream.size())
    samples, row_bytes = found
    return Shard(path, None, samples * row_bytes)


def split_shards(data_dir: str, split: str, meta: dict) -> list[Shard]:
    """The split's shards, in order, with their sizes."""
    fmt = meta.get("format", "parquet")
    paths = shards.shard_paths(data_dir, split, fmt)
    size = partial(_parquet_shard if fmt == "parquet" else _tar_shard, columns=columns_of(meta))
    with ThreadPoolExecutor(SIZE_THREADS) as pool:
        return list(pool.map(size, paths))


@dataclass(frozen=True)
class StreamedSplit:
    """A split read from its shards on every pass, on `threads` threads, `ahead` shards (at
    least `threads`) in flight. Picklable (paths, not open files): it travels to a trial like
    any argument, and the trial's process reads.
    """

    shards: tuple[Shard, ...]
    fmt: str
    columns: tuple[str, ...]
    threads: int = STREAM_THREADS

    def tables(self, ahead: int = 1) -> Iterator[pa.Table]:
        read = partial(read_shard, fmt=self.fmt, columns=list(self.columns))
        pending = iter(self.shards)
        with ThreadPoolExecutor(max(1, self.threads)) as pool:
            first = max(1, self.threads, ahead)
            in_flight = deque(pool.submit(read, s.path) for s in islice(pending, first))
            while in_flight:
                table = in_flight.popleft().result()
                following = next(pending, None)
                if following is not None:
                    in_flight.append(pool.submit(read, following.path))
                yield table
