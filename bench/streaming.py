"""Streaming a dataset larger than the object store: does a trial read it at disk speed?

The bench starts a local Ray whose object store is `--store-mb` (200 MB) and a Glideator dataset
at least twice that in memory (600 sites x 3650 days: 1.75 M training rows, 420 MB; generated
once into bench/out/streaming-data). `data.materialize: auto` must choose to stream it. Then, in
a process holding one CPU as a trial does, one pass over the training split in batches of 512,
best of 3, for:

- the baseline: pyarrow reads the shards one after another (the direct read);
- raysweep in a trial (`reading.StreamedSplit`, what `in_trial` trials stream);
- raysweep through Ray Data (`ray_data.open_split`, what a TorchTrainer's workers stream);
- reference: Ray's own `read_parquet`, streamed.

Then a training epoch of the Glideator net on the stream, with the share of it spent waiting for
input, and `raysweep io-search` over streamed settings on the same data (ranked by samples/s).

    python bench/streaming.py [--store-mb 200] [--out bench/out]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from pathlib import Path

import ray
import torch

from raysweep import spec as spec_mod
from raysweep.datasets import batching, glideator, ray_data, reading, shards
from raysweep.phases import io_search
from raysweep.runner import executors, session, tuning
from raysweep.training import loop
from raysweep.workloads import config_from_trial
from raysweep.workloads import glideator as workload

BATCH = 512


def rows_per_s(make_blocks, passes: int = 3) -> float:
    """Rows per second of the best of `passes` passes, cut into torch batches as a trial does."""
    best = float("inf")
    for _ in range(passes):
        start = time.perf_counter()
        rows = sum(len(b["labels"]) for b in batching.torch_batches(make_blocks(), batch_size=BATCH))
        best = min(best, time.perf_counter() - start)
    return rows / best


@ray.remote(num_cpus=1)
def ingest(data_dir: str, meta: dict) -> dict[str, float]:
    """Runs where a trial would: a worker process with one CPU of its own, on its threads."""
    executors.configure_ray_data()
    executors.use_cpus(1)
    split = reading.split_shards(data_dir, "train", meta)
    fmt, columns = meta["format"], reading.columns_of(meta)
    streamed = reading.StreamedSplit(tuple(split), fmt, tuple(columns))
    through_ray_data = ray_data.open_split(data_dir, "train", meta)
    rays_reader = ray.data.read_parquet(shards.shard_paths(data_dir, "train", fmt)).select_columns(columns)

    def ray_blocks(ds):
        return lambda: ds.iter_batches(batch_size=None, batch_format="pyarrow", prefetch_batches=4)

    return {
        "pyarrow, shard after shard (baseline)": rows_per_s(
            lambda: (reading.read_shard(s.path, fmt, columns) for s in split)),
        "raysweep in a trial (StreamedSplit, 2 threads)": rows_per_s(lambda: streamed.tables(ahead=4)),
        "raysweep through Ray Data (ShardSource; TorchTrainer workers)": rows_per_s(ray_blocks(through_ray_data)),
        "reference: Ray's read_parquet, streamed": rows_per_s(ray_blocks(rays_reader)),
    }


@ray.remote(num_cpus=1)
def training_epoch(data_dir: str, meta: dict) -> dict[str, float]:
    """One epoch of the Glideator net on the stream: how long, and how much of it waiting."""
    executors.use_cpus(1)
    split = reading.split_shards(data_dir, "train", meta)
    streamed = reading.StreamedSplit(tuple(split), meta["format"], tuple(reading.columns_of(meta)))
    cfg = config_from_trial(workload, {"batch_size": 4096, "shuffle_buffer": 0, "deep_hidden_units": [128, 64]})
    trainee = loop.build(workload, cfg, meta, device=torch.device("cpu"))
    trainee.model.train()
    waited, start = 0.0, time.perf_counter()
    batches = batching.torch_batches(streamed.tables(ahead=4), batch_size=cfg.batch_size)
    while True:
        before = time.perf_counter()
        batch = next(batches, None)
        waited += time.perf_counter() - before
        if batch is None:
            break
        loop.train_step(workload, cfg, trainee, batch, device=torch.device("cpu"))
    elapsed = time.perf_counter() - start
    return {"epoch_s": elapsed, "input_wait_frac": waited / elapsed, "rows_per_s": meta["rows"]["train"] / elapsed}


def io_search_table(data_dir: Path, storage: Path):
    raw = {"name": "streaming_io", "workload": "glideator", "data": {"path": str(data_dir), "materialize": False},
           "metric": "val_loss", "mode": "min", "fixed": {"deep_hidden_units": [128, 64]},
           "io_search": {"steps": 100, "warmup_steps": 10,
                         "grid": {"batch_size": [1024, 4096], "read_parallelism": [1, 2, 4]}},
           "storage_path": str(storage)}
    _, table = io_search.run(spec_mod.validate(raw))
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store-mb", type=int, default=200)
    parser.add_argument("--sites", type=int, default=600)
    parser.add_argument("--days", type=int, default=3650)
    parser.add_argument("--out", type=Path, default=Path("bench/out"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    data_dir = args.out / "streaming-data"
    if not (data_dir / "meta.json").exists():
        glideator.write(data_dir, n_sites=args.sites, n_days=args.days, seed=0)
    meta = shards.read_meta(data_dir)

    os.environ.update(session.DRIVER_ENV)   # Tune's console box off, as in `raysweep io-search`
    ray.init(num_cpus=2, object_store_memory=args.store_mb * 2**20, include_dashboard=False, log_to_driver=False)
    executors.configure_ray_data()
    nbytes = sum(s.nbytes for split in shards.SPLITS for s in reading.split_shards(str(data_dir), split, meta))
    store = ray_data.object_store_bytes()
    kept = tuning.keeps("auto", nbytes, store)
    rates = ray.get(ingest.remote(str(data_dir), meta))
    epoch = ray.get(training_epoch.remote(str(data_dir), meta))
    table = io_search_table(data_dir.resolve(), args.out / "streaming-results")

    result = {"rows": meta["rows"], "data_bytes": nbytes, "object_store_bytes": store, "auto_keeps": kept,
              "ingest_rows_per_s": rates, "training_epoch": epoch,
              "io_search": table.drop(columns=["error"]).to_dict(orient="records")}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "streaming.json").write_text(json.dumps(result, indent=2, default=str))

    baseline = next(iter(rates.values()))
    print(f"\n{meta['rows']['train']:,} training rows; train + val {nbytes / 1e6:.0f} MB in memory, "
          f"{nbytes / store:.1f}x the object store ({store / 1e6:.0f} MB); "
          f"materialize: auto {'keeps' if kept else 'streams'} it\n")
    print("| one pass over train, batches of 512, in a 1-CPU worker | rows/s | vs baseline |\n|---|---|---|")
    for name, rate in rates.items():
        print(f"| {name} | {rate:,.0f} | {rate / baseline:.2f} |")
    print(f"\ntraining epoch on the stream (batch 4096): {epoch['epoch_s']:.1f} s, "
          f"{epoch['rows_per_s']:,.0f} rows/s, waiting for input {epoch['input_wait_frac']:.1%} of it\n")
    print(io_search.format_table(table))


if __name__ == "__main__":
    main()
