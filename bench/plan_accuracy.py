"""How far to trust `raysweep plan`: its predictions against what the sweep then did.

Three shipped sweeps on this machine, each as a new user would run them:

- demo: search_spaces/glideator_asha_random.yaml on the Glideator demo data (16 trials, ASHA);
- grid: search_spaces/glideator_asha_grid.yaml on the same data (36 trials, ASHA on a grid);
- families: search_spaces/model_families_optuna.yaml on scikit-learn's breast-cancer table
  (24 trials of four model families, Optuna TPE, ASHA).

For each, and each search seed (the sweeps' randomness: which trials ASHA stops), in a fresh
results folder: `raysweep plan SPEC --probe` (the probe's run timed too), then `raysweep run
SPEC`; the plan the run wrote at its start (timed by that probe) is read beside what happened
(analysis/plan_check.py). Reported: predicted and actual trials, epochs,
wall time and CPU-hours, with the errors (goal: wall time within 30%, epochs within 15%).

    python bench/plan_accuracy.py [--cases demo,grid,families] [--seeds 3]

Writes bench/out/plan_accuracy.json and prints the table for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from model_families import cancer_table

from raysweep.analysis import forecast, plan_check

ROOT = Path(__file__).resolve().parents[1]
RAYSWEEP = str(Path(sys.executable).with_name("raysweep"))
DEMO_DATA = ROOT / "data" / "glideator"
CASES = {"demo": "glideator_asha_random.yaml", "grid": "glideator_asha_grid.yaml",
         "families": "model_families_optuna.yaml"}


def timed(*args: str, cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run([RAYSWEEP, *args], cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def case(name: str, work: Path, data: Path, seed: int) -> dict:
    spec = ROOT / "search_spaces" / CASES[name]
    results = work / f"results_{name}"
    overrides = ["--set", f"data.path={data}", "--set", f"storage_path={results}", "--set", f"search.seed={seed}"]
    probe_s = timed("plan", str(spec), *overrides, "--probe", cwd=work)
    command_s = timed("run", str(spec), *overrides, "--quiet", cwd=work)
    experiment_dir = next(p for p in results.iterdir() if "-probe-" not in p.name)
    predicted = forecast.read(experiment_dir)
    happened = plan_check.actual(experiment_dir)
    return {"case": name, "spec": CASES[name], "seed": seed, "probe_s": probe_s, "run_command_s": command_s,
            "predicted": {k: predicted[k] for k in ("trials", "epochs", "epochs_low", "epochs_high", "wall_s",
                                                    "cpu_hours")},
            "actual": happened, "timing_source": predicted["timing_source"]}


def error(predicted: float, happened: float) -> str:
    return f"{(happened - predicted) / predicted:+.0%}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--seeds", type=int, default=3, help="runs of each sweep, with search seeds 0, 1, ...")
    args = parser.parse_args()
    if not (DEMO_DATA / "meta.json").is_file():
        subprocess.run([RAYSWEEP, "data", "glideator", "--out", str(DEMO_DATA)], check=True)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for name in args.cases.split(","):
            data = cancer_table(work) if name == "families" else DEMO_DATA
            for seed in range(args.seeds):
                folder = work / f"{name}{seed}"
                folder.mkdir()
                rows.append(case(name, folder, data, seed))
                print(json.dumps(rows[-1]), flush=True)
    out = ROOT / "bench" / "out" / "plan_accuracy.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(rows, indent=2))
    print("\n| sweep | seed | trials | epochs: predicted (10th-90th) | actual | error | wall: predicted | actual "
          "| error | CPU-hours: predicted | actual | probe |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        p, a = r["predicted"], r["actual"]
        print(f"| {r['case']} | {r['seed']} | {a['trials']} | {p['epochs']:.0f} ({p['epochs_low']:.0f}-"
              f"{p['epochs_high']:.0f}) | {a['epochs']} | {error(p['epochs'], a['epochs'])} | {p['wall_s']:.0f} s "
              f"| {a['wall_s']:.0f} s | {error(p['wall_s'], a['wall_s'])} | {p['cpu_hours']:.3f} | {a['cpu_hours']:.3f} "
              f"| {r['probe_s']:.0f} s |")
    print("\n| sweep | runs | epochs: mean error | max error | wall: mean error | max error |")
    print("|---|---|---|---|---|---|")
    for name in dict.fromkeys(r["case"] for r in rows):
        mine = [r for r in rows if r["case"] == name]
        errors = {k: [(r["actual"][k] - r["predicted"][k]) / r["predicted"][k] for r in mine] for k in ("epochs", "wall_s")}
        print(f"| {name} | {len(mine)} | {sum(errors['epochs']) / len(mine):+.0%} | {max(errors['epochs'], key=abs):+.0%} "
              f"| {sum(errors['wall_s']) / len(mine):+.0%} | {max(errors['wall_s'], key=abs):+.0%} |")


if __name__ == "__main__":
    main()
