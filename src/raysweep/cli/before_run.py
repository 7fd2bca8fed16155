"""The commands that come before a run, `data` and `validate`: they import neither Ray nor the analysis.

Each handler takes the parsed arguments (parser.py) and returns the exit code.
"""

from __future__ import annotations

import argparse
import sys
from inspect import signature
from pathlib import Path

from raysweep.cli import exit_codes
from raysweep.datasets import describe, inspection, location, teachability
from raysweep.datasets.shards import DataError
from raysweep.errors import UserError
from raysweep.search.schedulers import SCHEDULERS
from raysweep.spec import load as spec_load
from raysweep.workloads import WORKLOADS, load_workload, references


def _data(args: argparse.Namespace) -> int:
    if getattr(args, "describe", False):
        return _describe(args)
    if location.is_uri(args.out_dir):
        raise DataError(f"--out {args.out_dir}: data commands write a local directory; write it there, "
                        f"then upload it (e.g. aws s3 sync DIR {args.out_dir}) and point data.path at the URI")
    write = args.data_command.write
    options = {k: v for k, v in vars(args).items() if k in signature(write).parameters}
    meta = write(**options)
    rows = ", ".join(f"{k} {v}" for k, v in meta["rows"].items())
    features = len(meta["feature_names"]) + len(meta.get("categorical_names", []))
    print(f"wrote {meta['workload']} data to {args.out_dir} ({meta['format']}; rows: {rows}; "
          f"{features} features)")
    found = inspection.inspect(args.out_dir, meta)
    task = meta.get("task") or _task(args)
    for warning in teachability.warnings(found.samples, meta, task, inspection.seen(found, meta)):
        print(f"warning: {warning.text}", file=sys.stderr)
    return exit_codes.OK


def _describe(args: argparse.Namespace) -> int:
    meta = describe.describe(args.data_dir, target=args.target, task=args.task, fmt=args.fmt,
                             drop=tuple(c for c in args.drop.split(",") if c), overwrite=args.overwrite)
    rows = ", ".join(f"{k} {v}" for k, v in meta["rows"].items())
    print(f"wrote {Path(args.data_dir) / 'meta.json'} ({meta['format']}; rows: {rows}; target {args.target}; "
          f"columns {', '.join(meta['feature_names'])})")
    found = inspection.inspect(args.data_dir, meta)
    for line in found.problems:
        print(f"warning: {line}", file=sys.stderr)
    for warning in teachability.warnings(found.samples, meta, meta.get("task"), inspection.seen(found, meta)):
        print(f"warning: {warning.text}", file=sys.stderr)
    return exit_codes.OK


def _task(args: argparse.Namespace) -> str | None:
    """The task of the workload whose data command ran (a built-in's, or the user's file's)."""
    for workload in WORKLOADS.values():
        if workload.DATA is args.data_command:
            return getattr(workload, "TASK", None)
    try:
        return getattr(load_workload(references.absolute(args.generator, Path.cwd())), "TASK", None)
    except UserError:
        return None


def _objectives(s) -> str:
    """What the sweep optimises: one metric, or several (a Pareto front) and which one stops trials."""
    if not s.multi_objective:
        said = f"optimising {s.metric} ({s.mode})"
    else:
        said = (f"optimising {len(s.objectives)} objectives, a Pareto front: "
                + ", ".join(f"{o.metric} ({o.mode})" for o in s.objectives))
        if SCHEDULERS[s.scheduler.type].stops_early:
            said += f"; the {s.scheduler.type} scheduler stops trials on the first, {s.metric}"
    if s.constraints:
        said += "; subject to " + ", ".join(c.text for c in s.constraints)
    return said


def _validate(args: argparse.Namespace) -> int:
    s = spec_load(args.spec, args.set)
    for line in s.warnings:
        print(f"warning: {line}", file=sys.stderr)

    def describe(p) -> str:
        notes = [p.type] + (["scientific"] if p.role == "scientific" else [])
        notes += [f"{v}: {', '.join(sub.name for sub in subs)}" for v, subs in p.when]
        return f"{p.name} ({'; '.join(notes)})"

    tuned = ", ".join(describe(p) for p in s.params) or "nothing"
    points = len(s.search.points_to_evaluate)
    sampler = f" ({s.search.sampler} sampler)" if s.search.sampler else ""
    print(f"{args.spec}: OK. {s.workload}: {s.search.algorithm}{sampler} search over {tuned}; "
          f"{s.search.num_samples} samples" + (f" ({points} given points first)" if points else "")
          + (f", warm start from {s.search.warm_start.experiment}" if s.search.warm_start else "")
          + f", {s.scheduler.type} scheduler, executor {s.executor}, {_objectives(s)}."
          + (f" io-search: {len(dict(s.io_search.grid))} settings varied." if s.io_search else ""))
    return exit_codes.OK


COMMANDS = {"data": _data, "validate": _validate}
