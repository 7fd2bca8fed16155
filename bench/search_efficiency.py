"""What early stopping buys: each scheduler against the exhaustive run, on three problems.

For each problem and seed the same trials run once to the end (the `fifo` scheduler: the
exhaustive answer) and once under each early-stopping scheduler with the shipped spec's
settings (`asha`; `hyperband` and `bohb` with its reduction factor; `median` with its grace
period). The configurations are the same in every run of a seed: a grid is a grid, and the
random searchers draw from the seed whatever the results (BOHB alone proposes its own).
Reported per scheduler, over the seeds:

- gap: how much worse its best metric is than the exhaustive best, in % of the latter;
- epochs: the epochs it trained, as a share of the exhaustive run's;
- wall: its wall time as a share of the exhaustive run's.

Problems (their data is made here if missing, small enough for a 2-core machine):

- glideator: search_spaces/glideator_asha_grid.yaml, its 36-point grid on the demo data;
- trajectory: search_spaces/trajectory_lstm_asha.yaml (12 trials, a branch for the hybrid
  loss) on a smaller trajectory dataset, 8 epochs;
- digits: scikit-learn's bundled handwritten digits (1,797 rows, 64 pixels, 10 classes)
  through `raysweep data import`, search_spaces/tabular_asha.yaml (16 trials).

    python bench/search_efficiency.py [--problems glideator,trajectory,digits] [--seeds 0,1,2]
        [--asha GRACE:FACTOR,...]   # ASHA settings to compare besides the spec's

Writes bench/out/search_efficiency.json (every run) and prints the table for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import math
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from raysweep import spec as spec_mod
from raysweep.analysis import store
from raysweep.phases import sweep
from raysweep.runner.session import start_ray
from raysweep.search import SEARCHERS
from raysweep.spec.parsing import parse_yaml

ROOT = Path(__file__).resolve().parents[1]
RAYSWEEP = str(Path(sys.executable).with_name("raysweep"))


def glideator_data() -> Path:
    out = ROOT / "data" / "glideator"
    if not (out / "meta.json").is_file():
        subprocess.run([RAYSWEEP, "data", "glideator", "--out", str(out)], check=True)
    return out


def trajectory_data() -> Path:
    out = ROOT / "data" / "trajectory_bench"
    if not (out / "meta.json").is_file():
        subprocess.run([RAYSWEEP, "data", "trajectory", "--out", str(out), "--layers-per-part", "6",
                        "--seconds-per-layer", "20", "--stride", "4"], check=True)
    return out


def digits_data() -> Path:
    out = ROOT / "data" / "digits"
    if not (out / "meta.json").is_file():
        from sklearn.datasets import load_digits

        table = load_digits(as_frame=True).frame
        with tempfile.TemporaryDirectory() as tmp:
            csv = Path(tmp) / "digits.csv"
            table.to_csv(csv, index=False)
            subprocess.run([RAYSWEEP, "data", "import", str(csv), "--target", "target", "--task", "multiclass",
                            "--out", str(out), "--seed", "0"], check=True)
    return out


PROBLEMS = {
    "glideator": ("glideator_asha_grid.yaml", glideator_data, {}),
    "trajectory": ("trajectory_lstm_asha.yaml", trajectory_data, {"epochs": 8}),
    "digits": ("tabular_asha.yaml", digits_data, {}),
}


def scheduler_variants(shipped: dict, asha_extra: list[tuple[int, float]]) -> dict[str, dict]:
    """The exhaustive run and each scheduler with the shipped spec's settings (as far as it reads them)."""
    grace, factor = shipped.get("grace_period", 1), shipped.get("reduction_factor", 3)
    variants = {"exhaustive (fifo)": {"type": "fifo"},
                f"asha (grace {grace}, factor {factor:g})": {**shipped, "type": "asha"},
                f"hyperband (factor {factor:g})": {"type": "hyperband", "reduction_factor": factor},
                f"median (grace {grace})": {"type": "median", "grace_period": grace},
                f"bohb (factor {factor:g})": {"type": "bohb", "reduction_factor": factor}}
    for g, f in asha_extra:
        variants[f"asha (grace {g}, factor {f:g})"] = {"type": "asha", "grace_period": g, "reduction_factor": f}
    return variants


def why_not(raw: dict) -> str | None:
    """Why this problem cannot run under its scheduler (spec validation's answer), or None."""
    try:
        spec_mod.validate(raw)
    except spec_mod.SpecError as exc:
        return "; ".join(exc.problems)
    return None


def for_scheduler(raw: dict, scheduler: dict) -> dict:
    """The spec under `scheduler`; BOHB brings its own searcher over the same values."""
    raw = copy.deepcopy(raw)
    raw["scheduler"] = scheduler
    if scheduler["type"] == "bohb":
        raw["search"] = {k: v for k, v in raw["search"].items() if k != "points_to_evaluate"}
        if SEARCHERS[raw["search"]["algorithm"]].grid == "every":   # a grid's size is BOHB's budget of trials
            sizes = [len(p["values"]) for p in raw["params"].values()]
            raw["search"]["num_samples"] = raw["search"].get("num_samples", 1) * math.prod(sizes)
        raw["search"]["algorithm"] = "bohb"
    return raw


def run_once(raw: dict) -> dict:
    started = time.monotonic()
    experiment_dir = sweep.run(spec_mod.validate(raw))
    wall = time.monotonic() - started
    s = spec_mod.validate(raw)
    trials = store.load(experiment_dir).trials
    column = f"best_{s.metric}"
    best = trials[column].min() if s.mode == "min" else trials[column].max()
    return {"best": float(best), "mode": s.mode, "epochs": int(trials["epochs_run"].sum()), "trials": len(trials),
            "wall_s": wall, "statuses": trials["status"].value_counts().to_dict(), "experiment": str(experiment_dir)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--problems", default="glideator,trajectory,digits")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--asha", default="", help="ASHA settings GRACE:FACTOR,... to compare besides the spec's")
    parser.add_argument("--only", default="", help="run only the schedulers whose names start with one of these "
                        "(comma-separated); the runs are added to those already in the JSON file")
    parser.add_argument("--out", default=str(ROOT / "bench" / "out"))
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    extra = [(int(g), float(f)) for g, f in (x.split(":") for x in args.asha.split(",") if x)]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    logging.getLogger("raysweep").setLevel(logging.WARNING)
    start_ray()
    results = out / "search_efficiency.json"
    only = [x for x in args.only.split(",") if x]
    runs = json.loads(results.read_text()) if only and results.is_file() else []
    for problem in args.problems.split(","):
        spec_file, make_data, fixed = PROBLEMS[problem]
        base = parse_yaml((ROOT / "search_spaces" / spec_file).read_text())
        base["data"]["path"] = str(make_data())
        base["fixed"].update(fixed)
        base["storage_path"] = str(out / "search_efficiency" / problem)
        variants = scheduler_variants(base["scheduler"], extra)
        for seed in seeds:
            for name, scheduler in variants.items():
                if only and not name.startswith(tuple(only)):
                    continue
                runs = [r for r in runs if (r["problem"], r["seed"], r["scheduler"]) != (problem, seed, name)]
                raw = for_scheduler({**base, "search": {**base["search"], "seed": seed}}, scheduler)
                problem_with_it = why_not(raw)
                row = {"problem": problem, "seed": seed, "scheduler": name}
                if problem_with_it:
                    runs.append({**row, "skipped": problem_with_it})
                    print(f"{problem} seed {seed} {name}: skipped: {problem_with_it}", flush=True)
                    continue
                runs.append({**row, **run_once(raw)})
                print(f"{problem} seed {seed} {name}: {runs[-1]}", flush=True)
                results.write_text(json.dumps(runs, indent=1))
    print(table(runs))


def table(runs: list[dict]) -> str:
    """One row per problem and scheduler: gap to the exhaustive best and shares of its epochs and wall time."""
    lines = ["| problem | scheduler | gap to exhaustive best, % (mean; worst of seeds) | epochs vs exhaustive "
             "| wall vs exhaustive |", "|---|---|---|---|---|"]
    exhaustive = {(r["problem"], r["seed"]): r for r in runs if r["scheduler"].startswith("exhaustive")}
    order = list(dict.fromkeys((r["problem"], r["scheduler"]) for r in runs))
    for problem, name in order:
        rows = [r for r in runs if r["problem"] == problem and r["scheduler"] == name]
        if any("skipped" in r for r in rows):
            lines.append(f"| {problem} | {name} | n/a: {rows[0]['skipped']} | | |")
            continue
        gaps, epochs, walls = [], [], []
        for r in rows:
            ex = exhaustive.get((problem, r["seed"]))
            if ex is None:   # a partial run (--only) without its exhaustive counterpart
                continue
            gaps.append(100 * (r["best"] - ex["best"]) / abs(ex["best"]) * (1 if r["mode"] == "min" else -1))
            epochs.append(r["epochs"] / ex["epochs"])
            walls.append(r["wall_s"] / ex["wall_s"])
        if not gaps:
            continue
        lines.append(f"| {problem} | {name} | {statistics.mean(gaps):+.2f}; {max(gaps):+.2f} | "
                     f"{statistics.mean(epochs):.2f} | {statistics.mean(walls):.2f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
