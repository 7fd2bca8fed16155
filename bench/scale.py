"""How a sweep's cost grows with its number of trials: time, driver memory, disk, analysis.

One-epoch trials of a small Glideator net on tiny data (6 sites x 150 days), random search over
the learning rate, FIFO, two trials at a time: the fixed cost of a trial, not its training, is
what is measured. For each N (100, 1,000, 10,000 by default) one `raysweep run` process, launched
as a user launches it, and then `raysweep rank` and `raysweep report` on its experiment:

- wall time, and the marginal seconds per trial between consecutive sizes;
- the driver process's peak resident memory (sampled every 0.2 s with psutil);
- the experiment directory's bytes and files per trial;
- how long `rank` and `report` take on the result, and `analysis.load` in this process: reading
  the store, and rebuilding it from Tune's files as after a driver killed mid-sweep (`rebuild_s`:
  the store removed first, so every trial's reports are read).

    python bench/scale.py [--trials 100 1000 10000] [--out bench/out]

The largest size takes a long time (about half an hour for 10,000 trials on 2 CPUs); each size's
row is written to bench/out/scale.json as soon as it is measured.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil
import yaml

from raysweep import analysis
from raysweep.analysis import store
from raysweep.datasets import glideator


def write_spec(data_dir: Path, trials: int, storage: Path) -> Path:
    spec = {"name": f"scale{trials}", "workload": "glideator", "data": {"path": str(data_dir)},
            "metric": "val_loss", "mode": "min",
            "fixed": {"epochs": 1, "batch_size": 64, "deep_hidden_units": [16, 8], "site_embedding_dim": 4},
            "params": {"learning_rate": {"type": "loguniform", "low": 1e-4, "high": 1e-2}},
            "search": {"algorithm": "random", "num_samples": trials, "seed": 0},
            "scheduler": {"type": "fifo"}, "resources": {"max_concurrent_trials": 2},
            "storage_path": str(storage)}
    path = storage.parent / f"scale{trials}.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def peak_rss(pid: int, stop: threading.Event, found: list[int]) -> None:
    """The process's largest resident set size, sampled until it ends or `stop` is set."""
    try:
        process = psutil.Process(pid)
        while not stop.is_set():
            found[0] = max(found[0], process.memory_info().rss)
            time.sleep(0.2)
    except psutil.NoSuchProcess:
        pass


def timed(args: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(args, check=True, capture_output=True)
    return time.perf_counter() - start


def load_times(experiment: Path) -> dict:
    """Seconds to load the store as written, and to rebuild it from Tune's files alone."""
    start = time.perf_counter()
    analysis.load(experiment)
    loaded = time.perf_counter() - start
    for name in (store.TRIALS_FILE, store.CURVES_FILE):
        (experiment / name).rename(experiment / f"{name}.kept")
    start = time.perf_counter()
    analysis.load(experiment)
    rebuilt = time.perf_counter() - start
    for name in (store.TRIALS_FILE, store.CURVES_FILE):
        (experiment / f"{name}.kept").replace(experiment / name)
    return {"load_s": loaded, "rebuild_s": rebuilt}


def sweep(data_dir: Path, trials: int, storage: Path) -> dict:
    """One `raysweep run` of `trials` trials, then `rank` and `report` on it."""
    raysweep = str(Path(sys.executable).parent / "raysweep")
    spec = write_spec(data_dir, trials, storage)
    start = time.perf_counter()
    process = subprocess.Popen([raysweep, "run", str(spec)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    found, stop = [0], threading.Event()
    sampler = threading.Thread(target=peak_rss, args=(process.pid, stop, found))
    sampler.start()
    _, errors = process.communicate()
    wall = time.perf_counter() - start
    stop.set()
    sampler.join()
    if process.returncode != 0:
        raise SystemExit(f"raysweep run failed ({process.returncode}):\n{errors[-3000:]}")
    experiment = max(storage.glob(f"scale{trials}-*"), key=lambda p: p.stat().st_mtime)
    files = [p for p in experiment.rglob("*") if p.is_file()]
    return {"trials": trials, "wall_s": wall, "driver_peak_rss_mb": found[0] / 2**20,
            "dir_bytes_per_trial": sum(p.stat().st_size for p in files) / trials,
            "files_per_trial": len(files) / trials,
            "rank_s": timed([raysweep, "rank", str(experiment)]),
            "report_s": timed([raysweep, "report", str(experiment)]),
            **load_times(experiment), "experiment": str(experiment)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, nargs="+", default=[100, 1000, 10000])
    parser.add_argument("--out", type=Path, default=Path("bench/out"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="raysweep-scale-", dir=os.environ.get("SCALE_TMP")))
    data_dir = work / "data"
    glideator.write(data_dir, n_sites=6, n_days=150, seed=3, rows_per_shard=256)

    rows = []
    for n in sorted(args.trials):
        rows.append(sweep(data_dir, n, work / "results"))
        (args.out / "scale.json").write_text(json.dumps(rows, indent=2))
        print(f"{n} trials: {rows[-1]['wall_s']:.0f} s", flush=True)

    print("\n| trials | wall s | marginal s/trial | driver peak MB | KB per trial | files per trial "
          "| rank s | report s | load s | rebuild s |\n|---|---|---|---|---|---|---|---|---|---|")
    previous = None
    for row in rows:
        marginal = "" if previous is None else \
            f"{(row['wall_s'] - previous['wall_s']) / (row['trials'] - previous['trials']):.3f}"
        print(f"| {row['trials']:,} | {row['wall_s']:.0f} | {marginal} | {row['driver_peak_rss_mb']:.0f} "
              f"| {row['dir_bytes_per_trial'] / 1e3:.0f} | {row['files_per_trial']:.1f} "
              f"| {row['rank_s']:.1f} | {row['report_s']:.1f} | {row['load_s']:.2f} | {row['rebuild_s']:.1f} |")
        previous = row


if __name__ == "__main__":
    main()
