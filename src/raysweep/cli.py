"""The `raysweep` command: data, validate, run, lr-find, io-search, resume, rank, report, plots, export, predict.

User mistakes (a bad spec, missing or corrupt data, a trial that cannot fit) end with one clear
message on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from raysweep import __version__

EXIT_USAGE = 2


def _data(args: argparse.Namespace) -> int:
    import inspect

    from raysweep.datasets import GENERATORS

    write = GENERATORS[args.generator]
    options = {k: v for k, v in vars(args).items() if k in inspect.signature(write).parameters}
    meta = write(**options)
    rows = ", ".join(f"{k} {v}" for k, v in meta["rows"].items())
    features = len(meta["feature_names"]) + len(meta.get("categorical_names", []))
    print(f"wrote {meta['workload']} data to {args.out_dir} ({meta['format']}; rows: {rows}; "
          f"{features} features)")
    return 0


def _validate(args: argparse.Namespace) -> int:
    from raysweep import spec

    s = spec.load(args.spec, args.set)

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
    return 0


def _print_leaderboard(experiment_dir: Path, *, metric=None, mode=None, top: int = 10,
                       group_by: str | None = None) -> int:
    """Print and save the leaderboard; returns how many trials are unfinished."""
    from raysweep import sweep
    from raysweep.analysis import diagnose, leaderboard

    s = sweep.load_snapshot(experiment_dir)
    metric, mode = metric or s.metric, mode or s.mode
    table = leaderboard.leaderboard(experiment_dir, metric=metric, mode=mode)
    if table.empty:
        print(f"{experiment_dir}: no trials have reported yet.")
        return 0
    paths = leaderboard.write(table, experiment_dir)
    print(leaderboard.format_table(table, top))
    print(f"\n{len(table)} trials; statuses: "
          + ", ".join(f"{n} {s}" for s, n in table["status"].value_counts().items()))
    if s.scientific:
        best = leaderboard.best_per_value(table, s.scientific)
        print(f"\nbest trial per {', '.join(s.scientific)} (scientific; the nuisance parameters tuned for each):")
        print(leaderboard.format_table(best, None))
    configs = leaderboard.repeats_over(table, s.tuned)
    if configs:
        print(f"\nby configuration, over seeds ({metric}: mean, std and 95% interval of the mean):")
        print(leaderboard.format_table(leaderboard.group_by(table, configs, metric, mode), top))
    if group_by:
        print(f"\nby {group_by} ({metric}: spread of each trial's best over the other parameters):")
        print(leaderboard.format_table(leaderboard.group_by(table, group_by, metric, mode), None))
    warnings = diagnose.edge_warnings(table, s.params, metric)
    failed = diagnose.failure_warning(table)
    for line in warnings + ([failed] if failed else []):
        print(f"warning: {line}", file=sys.stderr)
    print("leaderboard: " + ", ".join(str(p) for p in paths))
    return int((table["status"] == "unfinished").sum())


def _finish(experiment_dir: Path) -> int:
    unfinished = _print_leaderboard(experiment_dir)
    if unfinished:
        print(f"\ninterrupted with {unfinished} trials unfinished; finish the sweep with:\n"
              f"  raysweep resume {experiment_dir}", file=sys.stderr)
        return 130
    return 0


def _run(args: argparse.Namespace) -> int:
    from raysweep import spec, sweep

    s = spec.load(args.spec, args.set)
    try:
        experiment_dir = sweep.run(s, address=args.address)
    except KeyboardInterrupt:
        print("\ninterrupted; finish it with: raysweep resume <experiment dir printed above>",
              file=sys.stderr)
        return 130
    print(f"\nresults: {experiment_dir}")
    return _finish(experiment_dir)


def _resume(args: argparse.Namespace) -> int:
    from raysweep import sweep

    experiment_dir = sweep.resume(args.experiment_dir, address=args.address)
    return _finish(experiment_dir)


def _lr_find(args: argparse.Namespace) -> int:
    from raysweep import lr_find, spec

    s = spec.load(args.spec, args.set)
    outcome = lr_find.run(s, address=args.address)
    print(lr_find.format_outcome(outcome))
    print(f"\ncurves: {outcome.experiment_dir / lr_find.CURVES_FILE}\n"
          f"plot:   {outcome.experiment_dir / lr_find.PLOT_FILE}")
    if outcome.low is None:
        return 1
    if args.write_spec:
        path = lr_find.write_spec(s, outcome.low, outcome.high, args.write_spec)
        print(f"spec:   {path} (params.learning_rate over {outcome.low:.2g} .. {outcome.high:.2g})")
    return 0


def _io_search(args: argparse.Namespace) -> int:
    from raysweep import io_search, spec

    s = spec.load(args.spec, args.set)
    experiment_dir, table = io_search.run(s, address=args.address)
    print(io_search.format_table(table))
    best = io_search.best_settings(table)
    if not best:
        print("\nevery setting failed; see the error column", file=sys.stderr)
        return 1
    top = table.iloc[0]
    print(f"\nfastest: {', '.join(f'{k}={v}' for k, v in best.items())} "
          f"({top[io_search.OBJECTIVE]:,.0f} samples/s)")
    print(f"results: {', '.join(str(experiment_dir / f) for f in io_search.RESULTS_FILES)}")
    if args.write_spec:
        print(f"spec:    {io_search.write_spec(s, best, args.write_spec)}")
    return 0


def _rank(args: argparse.Namespace) -> int:
    from raysweep import spec, sweep

    s = sweep.load_snapshot(args.experiment_dir)  # a clear error for a directory that is not one
    if args.group_by and args.group_by not in s.tuned:
        raise spec.SpecError([f"--group-by {args.group_by}: not a tuned parameter of this experiment."
                              f"{spec.did_you_mean(args.group_by, s.tuned)} Tuned: {', '.join(s.tuned)}."])
    _print_leaderboard(Path(args.experiment_dir), metric=args.metric, mode=args.mode, top=args.top,
                       group_by=args.group_by)
    return 0


def _report(args: argparse.Namespace) -> int:
    from raysweep import sweep
    from raysweep.analysis import report

    sweep.load_snapshot(args.experiment_dir)  # a clear error for a directory that is not one
    print(f"report: {report.write(args.experiment_dir, args.out)}")
    return 0


def _plots(args: argparse.Namespace) -> int:
    from raysweep import sweep
    from raysweep.analysis import plots

    sweep.load_snapshot(args.experiment_dir)
    for name, path in plots.all_plots(args.experiment_dir, args.out).items():
        print(f"{name}: {path}")
    return 0


def _export(args: argparse.Namespace) -> int:
    import json

    from raysweep import export

    try:
        to = export.export(args.experiment_dir, args.to, metric=args.metric, mode=args.mode,
                           min_metric=args.min_metric)
    except export.ThresholdMissed as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return 1
    card = json.loads((to / export.CARD_FILE).read_text())
    top = card["champion"]
    print(f"exported trial {top['trial']} ({top['metric']} {top['value']:.4g}, weights of epoch "
          f"{card['weights']['epoch']}) to {to}: {export.MODEL_FILE} (TorchScript), {export.STATE_FILE}, "
          f"{export.META_FILE}, {export.CARD_FILE}; one row in {card['inference']['latency_ms_one_row']:.3g} ms on CPU")
    return 0


def _predict(args: argparse.Namespace) -> int:
    from raysweep import export

    frame, metrics = export.predict(args.model_dir, args.data, split=args.split, out=args.out)
    print(f"{len(frame)} predictions for {args.data} ({args.split})" + (f" written to {args.out}" if args.out else ""))
    if metrics:
        print("  " + "  ".join(f"{k} {v:.4g}" for k, v in metrics.items()))
    if not args.out:
        print(frame.head(5).to_string(index=False))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="raysweep", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"raysweep {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    data = sub.add_parser("data", help="generate a demo dataset, or import your own table")
    generators = data.add_subparsers(dest="generator", required=True)

    def generator(name: str, help: str):
        """`raysweep data NAME`: options reach the generator's write() by their dest names."""
        command = generators.add_parser(name, help=help)
        command.add_argument("--out", dest="out_dir", required=True, help="output directory")
        command.add_argument("--seed", type=int, default=0)
        command.add_argument("--format", dest="fmt", choices=("parquet", "webdataset"), default="parquet")
        command.set_defaults(func=_data)
        return command

    glide = generator("glideator", "synthetic paragliding XC forecast data")
    glide.add_argument("--sites", dest="n_sites", type=int, default=60, help="launch sites (default 60)")
    glide.add_argument("--days", dest="n_days", type=int, default=730, help="days (default 730)")
    trajectory = generator("trajectory", "synthetic toolpaths and servo tracking errors (LSTM windows)")
    trajectory.add_argument("--layers-per-part", type=int, default=10, help="layers of each of 4 parts (default 10)")
    trajectory.add_argument("--seconds-per-layer", type=float, default=40.0, help="default 40")
    trajectory.add_argument("--sequence-length", type=int, default=20, help="samples per window (default 20, at 100 Hz)")
    trajectory.add_argument("--stride", type=int, default=4, help="samples between window starts (default 4)")
    names = lambda text: [x.strip() for x in text.split(",") if x.strip()]  # noqa: E731 - COL,COL,...
    table = generator("import", "your own CSV or Parquet table, for the tabular workload")
    table.add_argument("path", metavar="FILE", help="a .csv, .tsv or .parquet file")
    table.add_argument("--target", required=True, type=names, metavar="COL[,COL...]", help="the column(s) to predict")
    table.add_argument("--task", required=True, choices=("regression", "binary", "multiclass", "multilabel"))
    table.add_argument("--categorical", type=names, default=[], metavar="COL[,COL...]",
                       help="columns to embed as categories (text columns must be listed)")
    table.add_argument("--drop", type=names, default=[], metavar="COL[,COL...]",
                       help="columns to leave out (ids, leaks of the target)")
    table.add_argument("--split-by", metavar="COL",
                       help="a train/val column, or groups (dates, sites) whose last --val-fraction go to val")
    table.add_argument("--val-fraction", type=float, default=0.2, help="share of rows or groups for val (default 0.2)")

    overrides = dict(action="append", default=[], metavar="KEY=VALUE",
                     help="override a spec value, e.g. --set search.num_samples=4 (repeatable)")
    validate = sub.add_parser("validate", help="check a sweep spec without starting Ray")
    validate.add_argument("spec")
    validate.add_argument("--set", **overrides)
    validate.set_defaults(func=_validate)

    def spec_command(name: str, func, help: str, write_spec: str | None = None) -> None:
        """A command that runs a spec on Ray: SPEC, --set, --address and maybe --write-spec."""
        command = sub.add_parser(name, help=help)
        command.add_argument("spec")
        command.add_argument("--set", **overrides)
        command.add_argument("--address", help="an existing Ray cluster (default: $RAY_ADDRESS, else a local Ray)")
        if write_spec:
            command.add_argument("--write-spec", metavar="OUT", help=write_spec)
        command.set_defaults(func=func)

    spec_command("run", _run, "run a sweep")
    spec_command("lr-find", _lr_find, "steps to fit and an LR range test; suggests a learning-rate range",
                 write_spec="write a copy of the spec with the suggested range")
    spec_command("io-search", _io_search, "time the data-path settings of io_search.grid; rank by samples/s",
                 write_spec="write a copy of the spec with the fastest settings")

    resume = sub.add_parser("resume", help="finish an interrupted sweep")
    resume.add_argument("experiment_dir")
    resume.add_argument("--address")
    resume.set_defaults(func=_resume)

    rank = sub.add_parser("rank", help="leaderboard of an experiment's trials")
    rank.add_argument("experiment_dir")
    rank.add_argument("--metric", help="rank on this metric (default: the spec's)")
    rank.add_argument("--mode", choices=("min", "max"))
    rank.add_argument("--top", type=int, default=10, help="rows to print (default 10; 0 = all)")
    rank.add_argument("--group-by", metavar="PARAM",
                      help="also rank the values of PARAM on the mean over the other parameters (e.g. seeds)")
    rank.set_defaults(func=_rank)

    rep = sub.add_parser("report", help="one self-contained HTML file: leaderboard, plots, spec, provenance")
    rep.add_argument("experiment_dir")
    rep.add_argument("--out", metavar="FILE", help="default: EXPERIMENT_DIR/report.html")
    rep.set_defaults(func=_report)

    plot = sub.add_parser("plots", help="the experiment's plots as PNG files")
    plot.add_argument("experiment_dir")
    plot.add_argument("--out", metavar="DIR", help="default: EXPERIMENT_DIR/plots")
    plot.set_defaults(func=_plots)

    exp = sub.add_parser("export", help="the best trial as TorchScript, state_dict, meta and a model card")
    exp.add_argument("experiment_dir")
    exp.add_argument("--to", required=True, metavar="DIR", help="the model directory to write")
    exp.add_argument("--metric", help="pick the champion on this metric (default: the spec's)")
    exp.add_argument("--mode", choices=("min", "max"))
    exp.add_argument("--min-metric", type=float, metavar="X",
                     help="deployment threshold: refuse (exit 1) unless the champion reaches X "
                          "(at least X for a metric to maximise, at most X for one to minimise)")
    exp.set_defaults(func=_export)

    pred = sub.add_parser("predict", help="predict a dataset split with an exported model")
    pred.add_argument("model_dir")
    pred.add_argument("--data", required=True, help="a raysweep dataset directory (Parquet shards)")
    pred.add_argument("--split", default="val", help="train, val or test (default val)")
    pred.add_argument("--out", help="write the predictions as Parquet")
    pred.set_defaults(func=_predict)
    return parser


def main(argv: list[str] | None = None) -> int:
    from raysweep.datasets.shards import DataError
    from raysweep.resources import SizingError
    from raysweep.spec import SpecError

    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="raysweep: %(message)s")
    try:
        return args.func(args)
    except SpecError as exc:
        print("\n".join(f"error: {p}" for p in exc.problems), file=sys.stderr)
    except (DataError, SizingError) as exc:
        print(f"error: {exc}", file=sys.stderr)
    return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
