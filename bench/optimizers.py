"""Does the Glideator sweep gain from tuning the optimiser? The shipped random-search spec as it
is (Adam) against the same spec with `optimizer` a choice of adam, adamw and sgd (Nesterov
momentum 0.9), on the demo data, over seeds.

The Tuning Playbook picks the optimiser right after the batch size; this measures whether the
glideator specs should search it. Reported per seed and variant: the best val_loss and val_auc,
and for the tuned variant the best trial of each optimiser.

    python bench/optimizers.py [--seeds 0,1] [--samples 16]

Writes bench/out/optimizers.json and prints the table for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from raysweep import spec as spec_mod
from raysweep.analysis import store
from raysweep.phases import sweep
from raysweep.runner.session import start_ray

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "search_spaces" / "glideator_asha_random.yaml"
DATA = ROOT / "data" / "glideator"
TUNED = ["params.optimizer={type: choice, values: [adam, adamw, sgd]}", "fixed.momentum=0.9", "fixed.nesterov=true"]


def one(seed: int, samples: int, tuned: bool, work: Path) -> dict:
    overrides = [f"data.path={DATA}", f"storage_path={work}", f"search.seed={seed}", f"search.num_samples={samples}",
                 *(TUNED if tuned else [])]
    started = time.monotonic()
    trials = store.load(sweep.run(spec_mod.load(SPEC, overrides))).trials
    best = trials.loc[trials["best_val_loss"].idxmin()]
    row = {"seed": seed, "variant": "optimizer tuned" if tuned else "adam (as shipped)",
           "best_val_loss": float(best["best_val_loss"]), "its_val_auc": float(best["best_val_auc"]),
           "wall_s": round(time.monotonic() - started, 1)}
    if tuned:
        row["best_optimizer"] = best["optimizer"]
        row["per_optimizer"] = {o: float(group["best_val_loss"].min()) for o, group in trials.groupby("optimizer")}
    return row


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--samples", type=int, default=16)
    args = parser.parse_args()
    if not (DATA / "meta.json").is_file():
        subprocess.run([str(Path(sys.executable).with_name("raysweep")), "data", "glideator", "--out", str(DATA)],
                       check=True)
    start_ray()
    rows = []
    with tempfile.TemporaryDirectory() as work:
        for seed in map(int, args.seeds.split(",")):
            for tuned in (False, True):
                rows.append(one(seed, args.samples, tuned, Path(work)))
                print(rows[-1], flush=True)
    out = ROOT / "bench" / "out"
    out.mkdir(parents=True, exist_ok=True)
    (out / "optimizers.json").write_text(json.dumps(rows, indent=2))
    print("\n| seed | variant | best val_loss | its val_auc | best per optimizer (val_loss) | wall s |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        per = ", ".join(f"{o} {v:.4f}" for o, v in r.get("per_optimizer", {}).items()) or "-"
        print(f"| {r['seed']} | {r['variant']} | {r['best_val_loss']:.4f} | {r['its_val_auc']:.4f} | {per} | {r['wall_s']} |")


if __name__ == "__main__":
    main()
