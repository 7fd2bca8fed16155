"""What a small `raysweep run` costs before and after its trials, against a plain Optuna study.

A run of N trials x 1 epoch costs `intercept + slope * N` seconds of wall time. The intercept is
what a user waits for even for one trial (starting Python, imports, Ray, reading the data, the
first trial process, shutting down); the slope is the cost of each further trial. Both are fitted
by least squares over runs of 1, 4 and 8 trials of the Glideator net on the demo data, each a
fresh process as a user starts it (`raysweep run SPEC --set ...`), and compared with a plain
Optuna study doing the same training (raysweep's loop on tensors that pyarrow read from the same
shards) in one process, as `python study.py` would.

The 1-trial run is also broken into phases, timed inside the `raysweep run` process by wrapping
the functions that `sweep.run` calls (this file's `--child` mode):

    interpreter + imports | spec, experiment dir | start Ray | open data | first trial process |
    training | rest of fit | results, exit (incl. Ray's shutdown)

    python bench/startup.py [--trials 1 4 8] [--repeats 2] [--out bench/out]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve()
SPEC = "search_spaces/glideator_asha_random.yaml"


def overrides(data_dir: Path, trials: int, storage: Path) -> list[str]:
    """One epoch per trial, no early stopping: the sweep's fixed cost, not the scheduler's."""
    return ["--set", f"data.path={data_dir}", "--set", f"search.num_samples={trials}",
            "--set", "fixed.epochs=1", "--set", "scheduler.type=fifo", "--set", f"storage_path={storage}"]


# --- child: one `raysweep run` with its phases timed ------------------------------------------

def child(argv: list[str], marks_file: Path) -> None:
    """Run the CLI as `raysweep run` does, stamping wall-clock times where its phases meet."""
    marks = {"process": float(os.environ["BENCH_LAUNCHED"]), "interpreter": time.time()}

    from ray import tune

    from raysweep.cli import console, main
    from raysweep.phases import sweep
    from raysweep.runner.progress import ProgressLines
    marks["imported"] = time.time()

    def stamped(fn, before: str | None, after: str):
        def wrapper(*args, **kwargs):
            if before:
                marks.setdefault(before, time.time())
            out = fn(*args, **kwargs)
            marks.setdefault(after, time.time())
            return out
        return wrapper

    sweep.start_ray = stamped(sweep.start_ray, "ray_start", "ray_started")
    sweep.tuning.prepare = stamped(sweep.tuning.prepare, None, "data_opened")
    tune.Tuner.fit = stamped(tune.Tuner.fit, "fit_start", "fit_end")
    on_result = ProgressLines.on_trial_result

    def first_result(self, iteration, trials, trial, result, **info):
        if "first_result" not in marks:
            marks["first_result"] = time.time()
            marks["first_trial_started"] = marks["first_result"] - result["time_this_iter_s"]
        return on_result(self, iteration, trials, trial, result, **info)

    ProgressLines.on_trial_result = first_result

    def timed_main(args=None):
        code = main(argv)
        marks["main_returned"] = time.time()
        marks_file.write_text(json.dumps(marks))   # the parent adds when the process ended
        return code

    # `console` as the installed `raysweep` runs it, with `main` timed
    sys.modules["raysweep.cli"].main = timed_main
    console()


PHASES = [("interpreter + imports", "process", "imported"),
          ("spec, experiment dir", "imported", "ray_start"),
          ("start Ray", "ray_start", "ray_started"),
          ("open data", "ray_started", "data_opened"),
          ("first trial process", "fit_start", "first_trial_started"),
          ("training (1 epoch)", "first_trial_started", "first_result"),
          ("rest of fit", "first_result", "fit_end"),
          ("results, exit (incl. Ray's shutdown)", "fit_end", "exit")]


def child_env() -> dict:
    """As a user's shell has it: Python may cache bytecode (this machine's sandbox turns that
    off, which makes every run compile the modules changed since the install again)."""
    return {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def raysweep_run(data_dir: Path, trials: int, work: Path, address: str | None = None) -> tuple[float, dict]:
    """Wall time of one `raysweep run` process (launch to exit) and its phase marks."""
    marks_file = work / f"marks-{trials}-{time.time_ns()}.json"
    argv = ["run", SPEC, *overrides(data_dir, trials, work / "results"), *(["--address", address] if address else [])]
    env = {**child_env(), "BENCH_LAUNCHED": repr(time.time())}
    start = time.perf_counter()
    done = subprocess.run([sys.executable, str(HERE), "--child", str(marks_file), *argv],
                          env=env, capture_output=True, text=True)
    wall, ended = time.perf_counter() - start, time.time()
    if done.returncode != 0:
        raise SystemExit(f"raysweep run failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return wall, {**json.loads(marks_file.read_text()), "exit": ended}


# --- the baseline: a plain Optuna study in one process --------------------------------------

OPTUNA_STUDY = r'''
import sys, time
import optuna, pyarrow.parquet as pq, torch
from raysweep.datasets import batching, shards
from raysweep.training import loop
from raysweep.workloads import config_from_trial, glideator as workload

data_dir, n_trials = sys.argv[1], int(sys.argv[2])
meta = shards.read_meta(data_dir)
cols = ["site_id", "features", "labels"]
train, val = (batching.arrow_to_torch(pq.read_table(shards.shard_paths(data_dir, s, "parquet"), columns=cols))
              for s in ("train", "val"))

def batches(tensors, epoch, seed, shuffle):
    n = len(tensors["labels"])
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    order = torch.randperm(n, generator=g) if shuffle else torch.arange(n)
    for start in range(0, n, 512):
        yield {k: v[order[start:start + 512]] for k, v in tensors.items()}

def objective(trial):
    values = {"epochs": 1, "batch_size": 512, "lr_decay": 0.95, "monotonicity_lambda": 1e-9, "seed": 0,
              "deep_hidden_units": trial.suggest_categorical("deep", ["128,64", "256,128"]),
              "cross_layers": trial.suggest_int("cross_layers", 1, 3),
              "site_embedding_dim": trial.suggest_categorical("site_embedding_dim", [8, 16]),
              "learning_rate": trial.suggest_float("learning_rate", 1e-4, 1e-3, log=True),
              "l1_lambda": trial.suggest_float("l1_lambda", 1e-9, 1e-6, log=True),
              "l2_lambda": trial.suggest_float("l2_lambda", 1e-9, 1e-6, log=True)}
    values["deep_hidden_units"] = [int(x) for x in values["deep_hidden_units"].split(",")]
    cfg = config_from_trial(workload, values)
    trainee = loop.build(workload, cfg, meta, device=torch.device("cpu"))
    found = {}
    data = loop.EpochData(train=lambda e: batches(train, e, cfg.seed, True), val=lambda: batches(val, 0, 0, False))
    loop.run_epochs(workload, cfg, trainee, data, lambda m, files: found.update(m), device=torch.device("cpu"))
    return found["val_loss"]

optuna.logging.set_verbosity(optuna.logging.WARNING)
optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0)).optimize(objective, n_trials=n_trials)
'''


def optuna_run(data_dir: Path, trials: int, work: Path) -> float:
    script = work / "study.py"
    script.write_text(OPTUNA_STUDY)
    start = time.perf_counter()
    subprocess.run([sys.executable, str(script), str(data_dir), str(trials)], check=True, env=child_env())
    return time.perf_counter() - start


def joined_runs(data_dir: Path, trials: list[int], repeats: int, work: Path) -> dict[int, float]:
    """The same runs joining a local Ray that `ray start --head` started once, as one would
    keep it between sweeps on a laptop; stopped again at the end (`ray stop`)."""
    ray_bin = Path(sys.executable).parent / "ray"
    # Ray 2.60 turns token auth on where ~/.ray/auth_token exists, and a driver joining by
    # address sends the token only with RAY_AUTH_MODE=token (../shared/notes/cluster.md).
    os.environ.setdefault("RAY_AUTH_MODE", "token")
    subprocess.run([str(ray_bin), "start", "--head", "--port=6390", "--node-ip-address=127.0.0.1",
                    f"--num-cpus={os.cpu_count()}", '--resources={"raysweep_trial_driver": 1000}',
                    "--include-dashboard=false", "--disable-usage-stats"], check=True, capture_output=True,
                   env=child_env())
    try:
        raysweep_run(data_dir, 1, work, "127.0.0.1:6390")   # warm-up
        return {n: min(raysweep_run(data_dir, n, work, "127.0.0.1:6390")[0] for _ in range(repeats)) for n in trials}
    finally:
        subprocess.run([str(ray_bin), "stop", "--force"], capture_output=True)


def fit_line(points: list[tuple[int, float]]) -> tuple[float, float]:
    """Least-squares intercept and slope of wall time against trials."""
    x, y = np.array([p[0] for p in points], float), np.array([p[1] for p in points], float)
    slope, intercept = np.polyfit(x, y, 1)
    return float(intercept), float(slope)


def phases(marks: dict) -> dict[str, float]:
    return {name: marks[end] - marks[start] for name, start, end in PHASES if start in marks and end in marks}


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        child(sys.argv[3:], Path(sys.argv[2]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--repeats", type=int, default=2, help="runs per trial count (the least is kept)")
    parser.add_argument("--data", type=Path, default=Path("data/glideator"))
    parser.add_argument("--out", type=Path, default=Path("bench/out"))
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="raysweep-startup-"))
    if not (args.data / "meta.json").exists():
        subprocess.run([sys.executable, "-m", "raysweep", "data", "glideator", "--out", str(args.data)], check=True)

    raysweep_run(args.data, 1, work)   # warm-up: bytecode and page caches, as on a user's second run
    optuna_run(args.data, 1, work)
    raysweep_walls, optuna_walls, breakdown = {}, {}, {}
    for n in args.trials:   # interleaved, so drift on the machine hits both alike
        for _ in range(args.repeats):
            wall, marks = raysweep_run(args.data, n, work)
            if wall < raysweep_walls.get(n, float("inf")):
                raysweep_walls[n] = wall
                if n == min(args.trials):
                    breakdown = phases(marks)
            optuna_walls[n] = min(optuna_walls.get(n, float("inf")), optuna_run(args.data, n, work))

    joined_walls = joined_runs(args.data, args.trials, args.repeats, work)
    fits = {"raysweep run": fit_line(list(raysweep_walls.items())),
            "raysweep run --address (a Ray started once)": fit_line(list(joined_walls.items())),
            "plain Optuna study": fit_line(list(optuna_walls.items()))}
    result = {"trials": args.trials, "raysweep_wall_s": raysweep_walls, "joined_wall_s": joined_walls,
              "optuna_wall_s": optuna_walls,
              "fit": {k: {"intercept_s": a, "slope_s": b} for k, (a, b) in fits.items()},
              "phases_of_one_trial_run_s": breakdown}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "startup.json").write_text(json.dumps(result, indent=2))

    optuna_slope = fits["plain Optuna study"][1]
    print("| | " + " | ".join(f"{n} trials s" for n in args.trials) + " | intercept s | slope s/trial | slope vs Optuna |")
    print("|---|" + "---|" * (len(args.trials) + 3))
    for name, walls in (("raysweep run", raysweep_walls), ("raysweep run --address (a Ray started once)", joined_walls),
                        ("plain Optuna study", optuna_walls)):
        intercept, slope = fits[name]
        print(f"| {name} | " + " | ".join(f"{walls[n]:.1f}" for n in args.trials)
              + f" | {intercept:.1f} | {slope:.2f} | {slope / optuna_slope:.2f}x |")
    print(f"\n| phase of a {min(args.trials)}-trial run | s |\n|---|---|")
    for name, seconds in breakdown.items():
        print(f"| {name} | {seconds:.2f} |")


if __name__ == "__main__":
    main()
