"""The four model families on two tables, in one study each (search_spaces/model_families_optuna.yaml).

Tables, both imported with `raysweep data import` and a held-out test split:

- demo: the Glideator demo data (60 sites x 730 days) as one table: the 45 weather, site and
  date features, the site as a category, target "a flight longer than 50 km" (binary),
  split by day (the last 10% of days test, the 20% before them val);
- cancer: scikit-learn's bundled breast-cancer table (569 rows, 30 features, binary), split at
  random (20% val, 20% test).

Each runs the ready spec as shipped (24 trials, Optuna TPE, ASHA, F-beta with beta 0.5, 2 trials
at a time on 2 CPUs). Reported per table and family: trials, trials ASHA stopped, the best
val_fbeta and that trial's val_auc, the mean seconds per fit; per table: wall time, the champion's
test score (`raysweep evaluate`: F-beta at the threshold chosen on val, and AUC) and the top-3
soft-voting ensemble's val_fbeta.

    python bench/model_families.py [--tables demo,cancer] [--samples 24]

Writes bench/out/model_families.json and prints the tables for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from sklearn import datasets as sk_datasets

from raysweep import spec as spec_mod
from raysweep.analysis import store
from raysweep.datasets import shards
from raysweep.deploy import ensemble, evaluate
from raysweep.phases import sweep
from raysweep.runner.session import start_ray

ROOT = Path(__file__).resolve().parents[1]
RAYSWEEP = str(Path(sys.executable).with_name("raysweep"))
SPEC = ROOT / "search_spaces" / "model_families_optuna.yaml"
FAMILIES = ("logistic_regression", "random_forest", "lightgbm", "xgboost")


def import_csv(frame: pd.DataFrame, work: Path, name: str, *options: str) -> Path:
    csv, out = work / f"{name}.csv", work / name
    frame.to_csv(csv, index=False)
    subprocess.run([RAYSWEEP, "data", "import", str(csv), "--target", "target", "--task", "binary",
                    "--out", str(out), *options], check=True, stdout=subprocess.DEVNULL)
    return out


def demo_table(work: Path) -> Path:
    """The Glideator demo data as one table, every split of it, split again by day on import."""
    data = ROOT / "data" / "glideator"
    if not (data / "meta.json").is_file():
        subprocess.run([RAYSWEEP, "data", "glideator", "--out", str(data)], check=True)
    meta = shards.read_meta(data)
    parts = [pq.read_table(shards.shard_paths(data, split, "parquet")) for split in meta["rows"]]
    features = np.concatenate([np.stack(p["features"].to_numpy(zero_copy_only=False)) for p in parts])
    frame = pd.DataFrame(features, columns=meta["feature_names"])
    frame["site"] = np.concatenate([p["site_id"].to_numpy() for p in parts]).astype(str)
    frame["day"] = np.concatenate([p["day"].to_numpy() for p in parts])
    labels = np.concatenate([np.stack(p["labels"].to_numpy(zero_copy_only=False)) for p in parts])
    frame["target"] = labels[:, meta["thresholds_km"].index(50)].astype(int)
    return import_csv(frame, work, "demo", "--categorical", "site", "--split-by", "day", "--test-fraction", "0.1")


def cancer_table(work: Path) -> Path:
    frame = sk_datasets.load_breast_cancer(as_frame=True).frame
    frame.columns = [c.replace(" ", "_") for c in frame.columns]
    return import_csv(frame, work, "cancer", "--test-fraction", "0.2")


def run(name: str, data: Path, work: Path, samples: int) -> dict:
    s = spec_mod.load(SPEC, [f"data.path={data}", f"storage_path={work / 'results' / name}",
                             f"search.num_samples={samples}"])
    start = time.perf_counter()
    experiment_dir = sweep.run(s)
    wall = time.perf_counter() - start
    trials = store.load(experiment_dir).trials
    curves = store.load(experiment_dir).curves
    families = {}
    for family in FAMILIES:
        mine = trials[trials["family"] == family]
        if mine.empty:
            families[family] = {"trials": 0}
            continue
        best = mine.sort_values("best_val_fbeta", ascending=False).iloc[0]
        fits = curves[curves["trial"].isin(mine["trial"])]["fit_seconds"]
        families[family] = {"trials": len(mine), "stopped": int((mine["status"] == "stopped by ASHA").sum()),
                            "best_val_fbeta": float(best["best_val_fbeta"]), "its_val_auc": float(best["last_val_auc"]),
                            "fit_s": float(fits.mean())}
    record = evaluate.evaluate(experiment_dir)
    voted = ensemble.build(experiment_dir, work / f"ensemble_{name}", top=3)
    meta = shards.read_meta(data)
    return {"table": name, "rows": meta["rows"], "features": len(meta["feature_names"]) + len(meta["categorical_names"]),
            "wall_s": wall, "families": families, "champion": record["champion"],
            "ensemble": {"val_fbeta": voted["value"], "members": [m["family"] for m in voted["ensemble"]["members"]],
                         "candidate": voted["candidate"]}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tables", default="demo,cancer")
    parser.add_argument("--samples", type=int, default=24)
    args = parser.parse_args()
    makers = {"demo": demo_table, "cancer": cancer_table}
    start_ray()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for name in args.tables.split(","):
            results.append(run(name, makers[name](work), work, args.samples))
    out = ROOT / "bench" / "out" / "model_families.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, default=str) + "\n")
    for r in results:
        print(f"\n{r['table']}: rows {r['rows']}, {r['features']} features; {r['wall_s']:.0f} s for "
              f"{sum(f['trials'] for f in r['families'].values())} trials")
        print("| family | trials | stopped by ASHA | best val_fbeta | its val_auc | s per fit |")
        print("|---|---|---|---|---|---|")
        for family, f in r["families"].items():
            if f["trials"]:
                print(f"| {family} | {f['trials']} | {f['stopped']} | {f['best_val_fbeta']:.4f} | "
                      f"{f['its_val_auc']:.4f} | {f['fit_s']:.2f} |")
            else:
                print(f"| {family} | 0 | | | | |")
        top = r["champion"]
        print(f"champion {top['trial']}: val_fbeta {top['validation']['val_fbeta']:.4f}; on test: F-beta at the val "
              f"threshold {top['test']['fbeta_at_threshold']:.4f} (best over test's own thresholds "
              f"{top['test']['fbeta_at_best_test_threshold']:.4f}), AUC {top['test']['auc']:.4f}; ensemble of "
              f"{', '.join(r['ensemble']['members'])}: val_fbeta {r['ensemble']['val_fbeta']:.4f}"
              f"{' (a candidate)' if r['ensemble']['candidate'] else ''}")


if __name__ == "__main__":
    main()
