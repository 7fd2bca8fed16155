"""Per-trial overhead of raysweep's two executors against a plain Tune trainable, and ingest rate.

Overhead = (sweep wall time - pure training time) / N trials, with trials run one at a time so
the subtraction is clean. "Pure training" runs the very same loop on in-memory tensors in this
process, without Ray. Three variants, measured in one run on one local Ray:

- raysweep default (`in_trial`), the whole `sweep.run` including reading the shards once;
- raysweep `torch_trainer` (Train V2 TorchTrainer inside each trial);
- a plain Tune function trainable doing the same work on numpy arrays (what one writes by hand),
  timed from reading the shards with pyarrow to the end of `fit`.

Ingest: rows/s of one pass over the training split with `iter_torch_batches` (streamed from the
shards, and from the materialised dataset the trials iterate each epoch) against reading the same
shards with pyarrow into torch batches.

    python bench/trial_overhead.py [--trials 6] [--epochs 3] [--out bench/out]
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import torch

from raysweep import spec as spec_mod
from raysweep.datasets import batching, glideator, ray_data, reading, shards
from raysweep.phases import sweep
from raysweep.runner import executors
from raysweep.runner.session import start_ray
from raysweep.training import loop
from raysweep.workloads import config_from_trial
from raysweep.workloads import glideator as workload

BATCH = 512


def read_arrays(data_dir: Path, split: str) -> dict[str, torch.Tensor]:
    """The direct read: pyarrow reads the shards, columns become tensors once."""
    table = pq.read_table(shards.shard_paths(data_dir, split, "parquet"),
                          columns=["site_id", "features", "labels"])
    return batching.arrow_to_torch(table)


def tensor_batches(tensors: dict, epoch: int, seed: int, shuffle: bool):
    n = len(tensors["labels"])
    order = np.random.default_rng(seed * 1_000_003 + epoch).permutation(n) if shuffle else np.arange(n)
    for start in range(0, n, BATCH):
        index = torch.from_numpy(order[start:start + BATCH])
        yield {k: v[index] for k, v in tensors.items()}


def in_memory_data(train: dict, val: dict, seed: int) -> loop.EpochData:
    return loop.EpochData(train=lambda e: tensor_batches(train, e, seed, True),
                          val=lambda: tensor_batches(val, 0, seed, False))


def pure_training_s(configs: list, meta: dict, train: dict, val: dict) -> float:
    torch.set_num_threads(1)
    start = time.perf_counter()
    for cfg in configs:
        trainee = loop.build(workload, cfg, meta, device=torch.device("cpu"))
        loop.run_epochs(workload, cfg, trainee, in_memory_data(train, val, cfg.seed),
                        lambda metrics, state: None, device=torch.device("cpu"))
    return time.perf_counter() - start


def plain_tune_s(data_dir: Path, meta: dict, learning_rates: list, fixed: dict, storage: Path) -> float:
    """A hand-written Tune function trainable: same loop, numpy data, tune.report per epoch."""
    from ray import tune

    def trainable(config, train, val):
        torch.set_num_threads(1)
        cfg = workload.Config(**{**config, "deep_hidden_units": tuple(config["deep_hidden_units"])})
        trainee = loop.build(workload, cfg, meta, device=torch.device("cpu"))
        loop.run_epochs(workload, cfg, trainee, in_memory_data(train, val, cfg.seed),
                        lambda metrics, state: tune.report(metrics), device=torch.device("cpu"))

    start = time.perf_counter()
    train, val = read_arrays(data_dir, "train"), read_arrays(data_dir, "val")
    tuner = tune.Tuner(
        tune.with_parameters(trainable, train=train, val=val),
        param_space={**fixed, "learning_rate": tune.grid_search(learning_rates)},
        tune_config=tune.TuneConfig(metric="val_loss", mode="min", max_concurrent_trials=1),
        run_config=tune.RunConfig(name="plain", storage_path=str(storage), verbose=0))
    tuner.fit()
    return time.perf_counter() - start


def raysweep_s(data_dir: Path, learning_rates: list, fixed: dict, storage: Path, executor: str) -> float:
    raw = {"name": f"bench-{executor}", "workload": "glideator", "data": {"path": str(data_dir)},
           "metric": "val_loss", "mode": "min", "fixed": fixed,
           "params": {"learning_rate": {"type": "grid", "values": learning_rates}},
           "search": {"algorithm": "grid"}, "scheduler": {"type": "fifo"},
           "resources": {"executor": executor, "max_concurrent_trials": 1},
           "storage_path": str(storage)}
    s = spec_mod.validate(raw)
    start = time.perf_counter()
    sweep.run(s)
    return time.perf_counter() - start


def ingest_rates(data_dir: Path, meta: dict, passes: int = 5) -> dict[str, float]:
    """Rows per second of one pass over the training split in batches of 512, best of `passes`."""
    rows = meta["rows"]["train"]

    def best(fn) -> float:
        times = []
        for _ in range(passes):
            start = time.perf_counter()
            n = sum(len(b["labels"]) for b in fn())
            times.append(time.perf_counter() - start)
            assert n == rows
        return rows / min(times)

    executors.configure_ray_data()
    split = reading.split_shards(str(data_dir), "train", meta)
    columns = reading.columns_of(meta)
    kept = ray_data.store_split(split, "parquet", columns)
    streamed = reading.StreamedSplit(tuple(split), "parquet", tuple(columns))
    materialised = ray_data.open_split(data_dir, "train", meta).materialize()
    plain = workload.Config(batch_size=BATCH, shuffle_buffer=0)
    shuffled = workload.Config(batch_size=BATCH, shuffle_buffer=4096)
    return {
        "pyarrow read of the shards -> torch batches": best(
            lambda: tensor_batches(read_arrays(data_dir, "train"), 0, 0, False)),
        "raysweep, kept in the object store (what trials iterate)": best(
            lambda: executors.epoch_data(plain, kept, None).train(0)),
        "raysweep, kept, shuffle buffer 4096": best(
            lambda: executors.epoch_data(shuffled, kept, None).train(0)),
        "raysweep, streamed from the shards in the trial (materialize: false)": best(
            lambda: executors.epoch_data(plain, streamed, None).train(0)),
        "reference: iter_torch_batches(512), a materialised Ray Dataset": best(
            lambda: materialised.iter_torch_batches(batch_size=BATCH)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=6)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--sites", type=int, default=60)
    parser.add_argument("--days", type=int, default=730)
    parser.add_argument("--out", type=Path, default=Path("bench/out"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    work = Path(tempfile.mkdtemp(prefix="raysweep-bench-"))
    data_dir = work / "data"
    meta = glideator.write(data_dir, n_sites=args.sites, n_days=args.days, seed=0)
    learning_rates = [float(x) for x in np.geomspace(1e-4, 1e-3, args.trials)]
    fixed = {"epochs": args.epochs, "batch_size": BATCH, "shuffle_buffer": 0,
             "deep_hidden_units": [128, 64], "seed": 0}
    configs = [config_from_trial(workload, {**fixed, "learning_rate": lr}) for lr in learning_rates]
    train, val = read_arrays(data_dir, "train"), read_arrays(data_dir, "val")

    start_ray()
    pure = pure_training_s(configs, meta, train, val)
    walls = {
        "raysweep in_trial (default)": raysweep_s(data_dir, learning_rates, fixed, work / "r", "in_trial"),
        "plain Tune function trainable": plain_tune_s(data_dir, meta, learning_rates, fixed, work / "p"),
        "raysweep torch_trainer": raysweep_s(data_dir, learning_rates, fixed, work / "r", "torch_trainer"),
    }
    ingest = ingest_rates(data_dir, meta)

    n = args.trials
    overhead = {k: (wall - pure) / n for k, wall in walls.items()}
    result = {"trials": n, "epochs": args.epochs, "rows": meta["rows"], "pure_training_s": pure,
              "wall_s": walls, "overhead_per_trial_s": overhead, "ingest_rows_per_s": ingest}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "trial_overhead.json").write_text(json.dumps(result, indent=2))

    print(f"\n{n} trials x {args.epochs} epochs, {meta['rows']['train']} training rows, run one at a time")
    print(f"pure training (same loop, no Ray): {pure:.1f} s in all, {pure / n:.2f} s per trial\n")
    print("| variant | sweep wall s | overhead per trial s | vs plain Tune |")
    print("|---|---|---|---|")
    for k in walls:
        ratio = (walls[k] / walls["plain Tune function trainable"])
        print(f"| {k} | {walls[k]:.1f} | {overhead[k]:.2f} | {ratio:.2f}x wall |")
    print("\n| ingest, one pass over train | rows/s | vs pyarrow |")
    print("|---|---|---|")
    for k, v in ingest.items():
        print(f"| {k} | {v:,.0f} | {v / next(iter(ingest.values())):.2f} |")


if __name__ == "__main__":
    main()
