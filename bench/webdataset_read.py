"""Read rate of WebDataset `.tar` shards against Parquet shards of the same rows.

The demo data's training split (Parquet) is written again as `.tar` shards, with as many rows per
shard as the Parquet shards hold, into a temporary folder; then, in one run on one local Ray, one
pass over the rows is timed (best of `--passes`) for:

- (a) pyarrow reading the Parquet shards (`pq.read_table`, its threads);
- (a2) raysweep's reader on them, shard after shard (`reading.read_shard`);
- (b) Ray Data reading them (`ray_data.open_split`: raysweep's `ShardSource`) and materialising;
- (c) the old WebDataset path: `ray.data.read_webdataset(decoder=True)` plus the renames it
      needed, materialised; on the first `--slow-rows` rows only, as it decodes row by row;
- (d) `webdataset.read_tar`, shard after shard in this process;
- (e) `ray_data.open_split` on the `.tar` shards (`read_tar` in Ray's read tasks), materialised;
- (g) what a streaming trial reads each epoch (`reading.StreamedSplit`, 2 threads), Parquet and .tar;
- (f) the `webdataset` PyPI package: `WebDataset(urls).decode()`, its samples stacked into one
      array per column (on `--slow-rows` rows); skipped when the package is not installed;
- a reference: reading the `.tar` shards' bytes alone, no decoding (the bound for (d): a tar
  holds each value in its own 512-byte blocks, some 20 times the Parquet shards' bytes).

Every reader reads the columns `meta.json` names (what training reads); each result is checked
against (a) for its row count.

    python bench/webdataset_read.py [--data data/glideator] [--passes 3] [--slow-rows 2048] [--out bench/out]
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import ray

from raysweep.datasets import location, ray_data, reading, shards
from raysweep.datasets import webdataset as tar_reader
from raysweep.runner import executors
from raysweep.runner.session import start_ray


def best_rate(read, n_rows: int, passes: int) -> float:
    """Rows per second of the fastest of `passes` calls of `read`, which returns the rows it read."""
    times = []
    for _ in range(passes):
        start = time.perf_counter()
        got = read()
        times.append(time.perf_counter() - start)
        assert got == n_rows, f"read {got} rows, expected {n_rows}"
    return n_rows / min(times)


def write_tars(data_dir: Path, out: Path, *, n_rows: int | None = None) -> tuple[Path, int]:
    """The training split as `.tar` shards (the first `n_rows` rows, or all) in `out`; returns the
    folder and its row count."""
    parquet = shards.shard_paths(data_dir, "train", "parquet")
    table = pq.read_table(parquet)
    columns = {name: shards.column_values(table[name]) for name in table.column_names}
    if n_rows is not None:
        columns = {name: values[:n_rows] for name, values in columns.items()}
    rows = len(next(iter(columns.values())))
    per_shard = math.ceil(table.num_rows / len(parquet))
    shards.write_split(columns, out, "train", fmt="webdataset", rows_per_shard=per_shard)
    return out, rows


def read_bytes(paths: list[str]) -> int:
    total = 0
    for path in paths:
        with location.open_input(path) as stream:
            total += stream.read_buffer().size
    return total


def materialised_rows(ds: ray.data.Dataset) -> int:
    return ds.materialize().count()


def member_names(path: str, columns: list[str]) -> dict[str, str]:
    """Member suffixes of the shard's first sample -> column names ("features.npy" -> "features")."""
    with tarfile.open(path) as tar:
        first = tar.next().name.split(".", 1)[0]
        names = {}
        for info in tar.getmembers():
            key, _, suffix = info.name.partition(".")
            if key == first and suffix.rsplit(".", 1)[0] in columns:
                names[suffix] = suffix.rsplit(".", 1)[0]
        return names


def old_ray_webdataset(tar_dir: Path, columns: list[str]) -> int:
    """What `open_split` did before `read_tar`: Ray's row-by-row decoder, then renames."""
    paths = shards.shard_paths(tar_dir, "train", "webdataset")
    ds = ray.data.read_webdataset(paths, decoder=True, include_paths=False)
    names = member_names(paths[0], columns)
    return materialised_rows(ds.select_columns(list(names)).rename_columns(names))


def streamed_rows(data_dir: Path, meta: dict) -> int:
    split = reading.StreamedSplit(tuple(reading.split_shards(str(data_dir), "train", meta)), meta["format"],
                                  tuple(reading.columns_of(meta)))
    return sum(t.num_rows for t in split.tables(ahead=4))


def pypi_webdataset(tar_dir: Path, columns: list[str]) -> int:
    """The `webdataset` package's reader, samples decoded one by one and stacked per column."""
    import webdataset as wds

    paths = shards.shard_paths(tar_dir, "train", "webdataset")
    members = {column: member for member, column in member_names(paths[0], columns).items()}
    values: dict[str, list] = {column: [] for column in members}
    for sample in wds.WebDataset(paths, shardshuffle=False, empty_check=False).decode():
        for column, member in members.items():
            values[column].append(sample[member])
    arrays = {column: np.stack([np.asarray(v) for v in rows]) for column, rows in values.items()}
    return len(next(iter(arrays.values())))


def rates(data_dir: Path, work: Path, passes: int, slow_rows: int) -> tuple[dict[str, float], dict]:
    meta = shards.read_meta(data_dir)
    columns = list(dict.fromkeys(meta["columns"].values()))
    parquet = shards.shard_paths(data_dir, "train", "parquet")
    tar_dir, n_rows = write_tars(data_dir, work / "tar")
    slow_dir, n_slow = write_tars(data_dir, work / "slow", n_rows=slow_rows)
    tars = shards.shard_paths(tar_dir, "train", "webdataset")
    tar_meta = {**meta, "format": "webdataset"}
    out = {
        "(a) pyarrow, Parquet": best_rate(lambda: pq.read_table(parquet, columns=columns).num_rows, n_rows, passes),
        "(a2) raysweep read_shard, Parquet, shard after shard": best_rate(
            lambda: sum(reading.read_shard(p, "parquet", columns).num_rows for p in parquet), n_rows, passes),
        "(b) Ray Data (ShardSource) on Parquet + materialize": best_rate(
            lambda: materialised_rows(ray_data.open_split(data_dir, "train", meta)), n_rows, passes),
        f"(c) old: Ray read_webdataset(decoder=True) + materialize, {n_slow} rows": best_rate(
            lambda: old_ray_webdataset(slow_dir, columns), n_slow, passes),
        "(d) new: read_tar, shard after shard": best_rate(
            lambda: sum(tar_reader.read_tar(p, columns).num_rows for p in tars), n_rows, passes),
        "(e) new: Ray Data (ShardSource) on read_tar + materialize": best_rate(
            lambda: materialised_rows(ray_data.open_split(tar_dir, "train", tar_meta)), n_rows, passes),
        "(g) streamed in a trial (StreamedSplit), Parquet": best_rate(
            lambda: streamed_rows(data_dir, meta), n_rows, passes),
        "(g) streamed in a trial (StreamedSplit), .tar": best_rate(
            lambda: streamed_rows(tar_dir, tar_meta), n_rows, passes),
        "reference: the .tar bytes alone, no decoding": best_rate(lambda: read_bytes(tars) and n_rows, n_rows, passes),
    }
    try:
        import webdataset  # noqa: F401
    except ImportError:
        print("(f) skipped: the webdataset package is not installed (pip install webdataset)")
    else:
        out[f"(f) webdataset package, decode + stack, {n_slow} rows"] = best_rate(
            lambda: pypi_webdataset(slow_dir, columns), n_slow, passes)
    sizes = {"parquet_bytes": sum(Path(p).stat().st_size for p in parquet),
             "tar_bytes": sum(Path(p).stat().st_size for p in tars), "rows": n_rows, "shards": len(tars)}
    return out, sizes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("data/glideator"))
    parser.add_argument("--passes", type=int, default=3)
    parser.add_argument("--slow-rows", type=int, default=2048, help="rows for the row-by-row readers (c), (f)")
    parser.add_argument("--out", type=Path, default=Path("bench/out"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    start_ray()
    executors.configure_ray_data()
    with tempfile.TemporaryDirectory(prefix="raysweep-wds-") as work:
        result, sizes = rates(args.data, Path(work), args.passes, args.slow_rows)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "webdataset_read.json").write_text(json.dumps({**sizes, "rows_per_s": result}, indent=2))

    base = result["(a) pyarrow, Parquet"]
    print(f"\n{sizes['rows']} training rows in {sizes['shards']} shards: Parquet {sizes['parquet_bytes'] / 1e6:.1f} MB, "
          f".tar {sizes['tar_bytes'] / 1e6:.1f} MB; best of {args.passes}\n")
    print("| reader | rows/s | vs (a) |")
    print("|---|---|---|")
    for name, rate in result.items():
        print(f"| {name} | {rate:,.0f} | {rate / base:.3g} |")


if __name__ == "__main__":
    main()
