"""`raysweep champion`: choose across experiments and register (deploy/champions.py), or
`--show` what a registry holds (deploy/registry.py)."""

from __future__ import annotations

import argparse
import sys

import pandas as pd

from raysweep.cli import exit_codes
from raysweep.deploy import champions, registry


def _show(args: argparse.Namespace) -> int:
    where = registry.find(args.registry)
    versions = registry.open_registry(where).versions(args.name)
    if not versions:
        print(f"{where}: no registered models yet; raysweep champion EXPERIMENT... registers one")
        return exit_codes.OK
    for name in dict.fromkeys(v.name for v in versions):
        rows = [{"": "*" if v.champion else "", "version": v.version,
                 "registered": v.record.get("registered", "")[:16].replace("T", " "),
                 "experiment": str(v.record.get("experiment", "")).rstrip("/").rsplit("/", 1)[-1],
                 "trial": v.record.get("trial"), **({"family": v.record["family"]} if v.record.get("family") else {}),
                 v.record.get("metric", "val"): f"{v.record.get('validation', float('nan')):.4g}",
                 f"test {v.record.get('test_metric', '')}": f"{v.record.get('test', float('nan')):.4g}",
                 "replaced": v.record.get("replaced") or ""}
                for v in versions if v.name == name]
        print(f"{name} in {where} (* the champion, registry:{name}):")
        print(pd.DataFrame(rows).fillna("").to_string(index=False) + "\n")
    return exit_codes.OK


def _champion(args: argparse.Namespace) -> int:
    if args.show:
        return _show(args)
    if not args.experiments:
        print("error: name the experiments to choose from (directories, globs, URIs or a folder of them such as "
              "results), or --show what the registry holds", file=sys.stderr)
        return exit_codes.USAGE
    since = champions.parse_since(args.since) if args.since else None
    dirs, left_out = champions.gather(args.experiments)
    found = champions.candidates(dirs, metric=args.metric, mode=args.mode, since=since)
    comparable, metric, mode = found.comparable, found.metric, found.mode
    left_out += found.left_out
    if comparable:
        first = comparable[0].data
        print(f"candidates for the champion, by {metric} ({mode}) on the val data of {first['path']}:")
        print(champions.format_candidates(comparable, metric))
    if left_out:
        print("\nleft out:\n" + "\n".join(f"  {c.experiment_dir.name}: {c.left_out}" for c in left_out))
    if not comparable:
        print("\nnothing to choose from: no experiment above has a trial that reported "
              f"{metric or 'its metric'} on comparable data", file=sys.stderr)
        return exit_codes.NOTHING_FOUND
    where, name = champions.registry_of(found.newest, args.registry, args.name)
    decision = champions.decide(comparable[0], metric=metric, mode=mode, name=name, registry=where,
                                min_metric=args.min_metric, again=args.again, export_format=args.export_format)
    scored = decision.evaluation
    shown = "  ".join(f"{k} {v:.4g}" for k, v in decision.scores.items())
    print(f"\nthe test split ({scored['rows']} rows, scored {scored['scored']}): trial {comparable[0].best.trial}: {shown}")
    if decision.outcome in (champions.BELOW_THRESHOLD, champions.NOT_COMPARABLE):
        print(f"refused: {decision.reason}", file=sys.stderr)
        return exit_codes.NOTHING_FOUND
    print(f"{decision.outcome}: {decision.reason}\nregistry: {decision.registry} "
          f"(raysweep predict --model registry:{decision.name} --data DIR)")
    return exit_codes.OK


COMMANDS = {"champion": _champion}
