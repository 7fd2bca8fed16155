"""How much of the exhaustive Pareto front do NSGA-II and multi-objective TPE find on a budget?

The space is search_spaces/trajectory_accuracy_latency.yaml's (seed 001: LSTM size against
val_mae and the measured latency_ms, under its 1 ms latency constraint), shrunk to a grid an
exhaustive run can afford: hidden_size x num_layers x learning_rate as choices (4 x 3 x 3 = 36
cells), a few epochs on a small trajectory dataset. The grid runs every cell once
(`search.algorithm: grid`); then each sampler runs the same space with 16 trials, 44% of the
grid (`search.algorithm: optuna`, `search.sampler: tpe | nsga2`), one run per seed. Every run is
a real sweep of the spec (`sweep.run`, as `raysweep run`), two trials at a time. The budget is a
little over a third of the grid because TPE's first 10 trials are random: at 12 it would model
only 2.

Quality is the 2-D hypervolume of a run's feasible front, as a ratio to the grid's, against a
reference point just beyond the grid's worst feasible values (the worst plus 10% of each
objective's range, so that the front's end points count). Two ratios per run:

- scored on the grid: each configuration the sampler tried takes the grid's values for that cell
  (the grid runs with seed 0). Scored this way the ratio measures the choice of cells alone, and
  it is at most 1;
- as measured: the run's own values. These differ from the grid's twice over: `search.seed` also
  seeds each trial's weights (`fixed.seed` defaults to it), and after a few epochs val_mae still
  depends on the initial weights; and a measured latency moves by some percent from run to run.
  The JSON records the largest val_mae difference to the grid per run (0 for seed 0).

"nsga2, population 4" is NSGA-II with a population that fits the budget (`search.sampler:
{name: nsga2, population_size: 4}`): with Optuna's default population of 50, NSGA-II never leaves
its random first generation within fewer trials.

`--resume` keeps the grid and the runs already in the JSON file and runs only `--variants`.

    python bench/multi_objective.py [--seeds 0,1,2] [--epochs 3] [--budget 16]
        [--variants tpe,nsga2,nsga2-p4] [--resume]

Writes bench/out/multi_objective.json (every run, every trial's point) and prints the table for
BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import statistics
import subprocess
import sys
import time
from pathlib import Path

from raysweep import spec as spec_mod
from raysweep.analysis import store
from raysweep.phases import sweep
from raysweep.runner.session import start_ray
from raysweep.spec.parsing import parse_yaml

ROOT = Path(__file__).resolve().parents[1]
RAYSWEEP = str(Path(sys.executable).with_name("raysweep"))
SPEC = ROOT / "search_spaces" / "trajectory_accuracy_latency.yaml"
GRID = {"hidden_size": [16, 32, 64, 128], "num_layers": [1, 2, 3], "learning_rate": [1e-3, 3e-3, 1e-2]}
OBJECTIVES = ("at_best_val_mae", "at_best_latency_ms")   # both minimised
VARIANTS = {"tpe": "tpe", "nsga2": "nsga2", "nsga2-p4": {"name": "nsga2", "population_size": 4}}   # search.sampler
LABELS = {"tpe": "tpe (multi-objective TPE)", "nsga2": "nsga2 (as shipped: population 50)",
          "nsga2-p4": "nsga2, population_size 4"}


def data(layers_per_part: int, seconds_per_layer: float) -> Path:
    out = ROOT / "data" / f"trajectory_mo_{layers_per_part}x{seconds_per_layer:g}"
    if not (out / "meta.json").is_file():
        subprocess.run([RAYSWEEP, "data", "trajectory", "--out", str(out), "--layers-per-part", str(layers_per_part),
                        "--seconds-per-layer", str(seconds_per_layer)], check=True)
    return out


def hypervolume(points: list[tuple[float, float]], reference: tuple[float, float]) -> float:
    """The area dominated by `points` (both objectives minimised) and bounded by `reference`:
    a sweep along the first objective, adding each point's strip below the best second value so
    far. Exact, O(n log n); points outside the reference box add nothing."""
    volume, best = 0.0, reference[1]
    for x, y in sorted(p for p in points if p[0] < reference[0] and p[1] < reference[1]):
        if y < best:
            volume += (reference[0] - x) * (best - y)
            best = y
    return volume


def cell(row) -> tuple:
    return int(row["hidden_size"]), int(row["num_layers"]), f"{float(row['learning_rate']):g}"


def front(points: dict[tuple, tuple[float, float]]) -> set[tuple]:
    """The cells no other point dominates."""
    def dominates(a, b):
        return a[0] <= b[0] and a[1] <= b[1] and a != b
    return {c for c, p in points.items() if not any(dominates(q, p) for q in points.values())}


def run(base: dict, search: dict) -> dict:
    """One sweep of the shrunk space; every trial's cell, point and feasibility."""
    raw = copy.deepcopy(base)
    raw["search"] = search
    started = time.monotonic()
    experiment_dir = sweep.run(spec_mod.validate(raw))
    wall = time.monotonic() - started
    trials = store.load(experiment_dir).trials
    rows = [{"cell": list(cell(t)), "val_mae": float(t[OBJECTIVES[0]]), "latency_ms": float(t[OBJECTIVES[1]]),
             "feasible": bool(t["feasible"]), "status": t["status"]} for _, t in trials.iterrows()]
    return {"wall_s": round(wall, 1), "trials": rows, "experiment": str(experiment_dir)}


def score(result: dict, grid: dict[tuple, dict], reference: tuple[float, float], grid_hv: float,
          grid_front: set[tuple]) -> dict:
    """Hypervolume ratios of one run's feasible trials, scored on the grid and as measured."""
    cells = {tuple(t["cell"]) for t in result["trials"]}
    on_grid = {c: (grid[c]["val_mae"], grid[c]["latency_ms"]) for c in cells if grid[c]["feasible"]}
    measured = [(t["val_mae"], t["latency_ms"]) for t in result["trials"] if t["feasible"]]
    mae_moved = max((abs(t["val_mae"] - grid[tuple(t["cell"])]["val_mae"]) for t in result["trials"]), default=0.0)
    return {"hv_ratio_grid": hypervolume(list(on_grid.values()), reference) / grid_hv,
            "hv_ratio_measured": hypervolume(measured, reference) / grid_hv,
            "distinct_cells": len(cells), "grid_front_found": len(grid_front & cells),
            "val_mae_max_difference_to_grid": mae_moved}


def base_spec(args) -> dict:
    base = parse_yaml(SPEC.read_text())
    base["data"]["path"] = str(data(args.layers_per_part, args.seconds_per_layer))
    base["fixed"]["epochs"] = args.epochs
    base["params"] = {name: {"type": "choice", "values": values} for name, values in GRID.items()}
    base["storage_path"] = str(Path(args.out) / "multi_objective")
    return base


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--budget", type=int, default=16, help="trials per sampler run")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--layers-per-part", type=int, default=5)
    parser.add_argument("--seconds-per-layer", type=float, default=16.0)
    parser.add_argument("--out", default=str(ROOT / "bench" / "out"))
    parser.add_argument("--resume", action="store_true", help="keep the grid and runs in the JSON file")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    logging.getLogger("raysweep").setLevel(logging.WARNING)
    base = base_spec(args)
    budget = args.budget
    start_ray()

    results = out / "multi_objective.json"
    if args.resume and results.is_file():
        report = json.loads(results.read_text())
        exhaustive = report["grid_run"]
    else:
        report = {"grid": GRID, "epochs": args.epochs, "budget": budget, "data": base["data"]["path"],
                  "constraints": base["constraints"], "runs": []}
        exhaustive = run(base, {"algorithm": "grid", "num_samples": 1, "seed": 0})
        report["grid_run"] = exhaustive
    grid = {tuple(t["cell"]): t for t in exhaustive["trials"]}
    feasible = {c: (t["val_mae"], t["latency_ms"]) for c, t in grid.items() if t["feasible"]}
    worst = [max(p[i] for p in feasible.values()) for i in (0, 1)]
    best = [min(p[i] for p in feasible.values()) for i in (0, 1)]
    reference = tuple(w + 0.1 * (w - b) for w, b in zip(worst, best))
    grid_front = front(feasible)
    grid_hv = hypervolume(list(feasible.values()), reference)
    report.update(reference=reference, grid_hv=grid_hv, grid_front=sorted(grid_front),
                  grid_feasible=len(feasible))
    print(f"grid: {len(grid)} cells, {len(feasible)} feasible, front {sorted(grid_front)}, "
          f"{exhaustive['wall_s']} s", flush=True)
    for variant in args.variants.split(","):
        for seed in map(int, args.seeds.split(",")):
            report["runs"] = [r for r in report["runs"] if (r["variant"], r["seed"]) != (variant, seed)]
            result = run(base, {"algorithm": "optuna", "sampler": VARIANTS[variant], "num_samples": budget,
                                "seed": seed})
            result.update(variant=variant, seed=seed, **score(result, grid, reference, grid_hv, grid_front))
            report["runs"].append(result)
            print({k: v for k, v in result.items() if k not in ("trials", "experiment")}, flush=True)
            results.write_text(json.dumps(report, indent=1))
    results.write_text(json.dumps(report, indent=1))
    print(table(report))


def spread(values: list[float]) -> str:
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.3f} ± {sd:.3f} ({min(values):.3f}-{max(values):.3f})"


def table(report: dict) -> str:
    """One row per search: hypervolume ratios over the seeds (mean ± sd, min-max), cells, time."""
    n_front = len(report["grid_front"])
    lines = ["| search | trials per run | HV ratio, scored on the grid | HV ratio, as measured "
             f"| grid front cells found (of {n_front}) | distinct cells tried | wall s per run |",
             "|---|---|---|---|---|---|---|",
             f"| exhaustive grid | {len(report['grid_run']['trials'])} | 1 | 1 | {n_front} | "
             f"{len(report['grid_run']['trials'])} | {report['grid_run']['wall_s']:.0f} |"]
    for variant in dict.fromkeys(r["variant"] for r in report["runs"]):
        runs = [r for r in report["runs"] if r["variant"] == variant]
        lines.append(f"| {LABELS[variant]} | {report['budget']} | {spread([r['hv_ratio_grid'] for r in runs])} | "
                     f"{spread([r['hv_ratio_measured'] for r in runs])} | "
                     f"{statistics.mean(r['grid_front_found'] for r in runs):.1f} | "
                     f"{statistics.mean(r['distinct_cells'] for r in runs):.1f} | "
                     f"{statistics.mean(r['wall_s'] for r in runs):.0f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
