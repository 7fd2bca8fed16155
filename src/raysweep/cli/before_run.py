"""The commands that come before a run, `data` and `validate`: they import neither Ray nor the analysis.

Each handler takes the parsed arguments (parser.py) and returns the exit code.
"""

from __future__ import annotations

import argparse
import inspect

from raysweep.cli import exit_codes
from raysweep.datasets import location
from raysweep.datasets.shards import DataError
from raysweep.spec import load as spec_load


def _data(args: argparse.Namespace) -> int:
    if location.is_uri(args.out_dir):
        raise DataError(f"--out {args.out_dir}: data commands write a local directory; write it there, "
                        f"then upload it (e.g. aws s3 sync DIR {args.out_dir}) and point data.path at the URI")
    write = args.data_command.write
    options = {k: v for k, v in vars(args).items() if k in inspect.signature(write).parameters}
    meta = write(**options)
    rows = ", ".join(f"{k} {v}" for k, v in meta["rows"].items())
    features = len(meta["feature_names"]) + len(meta.get("categorical_names", []))
    print(f"wrote {meta['workload']} data to {args.out_dir} ({meta['format']}; rows: {rows}; "
          f"{features} features)")
    return exit_codes.OK


def _validate(args: argparse.Namespace) -> int:
    s = spec_load(args.spec, args.set)

    def describe(p) -> str:
        notes = [p.type] + (["scientific"] if p.role == "scientific" else [])
        notes += [f"{v}: {', '.join(sub.name for sub in subs)}" for v, subs in p.when]
        return f"{p.name} ({'; '.join(notes)})"

    tuned = ", ".join(describe(p) for p in s.params) or "nothing"
    points = len(s.search.points_to_evaluate)
    print(f"{args.spec}: OK. {s.workload}: {s.search.algorithm} search over {tuned}; "
          f"{s.search.num_samples} samples" + (f" ({points} given points first)" if points else "")
          + (f", warm start from {s.search.warm_start.experiment}" if s.search.warm_start else "")
          + f", {s.scheduler.type} scheduler, executor {s.executor}, optimising {s.metric} ({s.mode})."
          + (f" io-search: {len(dict(s.io_search.grid))} settings varied." if s.io_search else ""))
    return exit_codes.OK


COMMANDS = {"data": _data, "validate": _validate}
