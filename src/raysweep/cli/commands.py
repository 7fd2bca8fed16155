"""The commands that run on Ray or read results: run, resume, lr-find, io-search, rank, export,
predict, ensemble, evaluate (report and plots, which draw, are in drawing.py).

Each handler takes the parsed arguments (parser.py) and returns the exit code; a user's mistake
raises a `raysweep.errors.UserError`, which `main` prints as one message with exit code 2.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import pandas as pd

from raysweep import experiment
from raysweep.analysis import champion, diagnose, forecast, leaderboard, pareto, picks, plan_check, store
from raysweep.checks import did_you_mean
from raysweep.cli import exit_codes
from raysweep.deploy import ensemble, evaluate, export, registry
from raysweep.errors import UserError
from raysweep.phases import io_search, lr_find, sweep
from raysweep.runner import logs
from raysweep.spec import SpecError
from raysweep.spec import load as spec_load


def push_outputs(experiment_dir: Path) -> None:
    """For an experiment stored at a URI: upload what the command wrote into its working copy."""
    experiment.push(experiment_dir, [*leaderboard.LEADERBOARD_FILES, store.TRIALS_FILE, store.CURVES_FILE,
                                     experiment.REPORT_FILE, experiment.PLOTS_DIR])


def _print_leaderboard(experiment_dir: Path, *, metric=None, mode=None, top: int = 10,
                       group_by: str | None = None) -> pd.DataFrame:
    """Print and save the leaderboard; returns it."""
    s = experiment.load_spec(experiment_dir)
    metric, mode = metric or s.metric, mode or s.mode
    table = leaderboard.leaderboard(experiment_dir, metric=metric, mode=mode)
    if table.empty:
        print(f"{experiment_dir}: no trials have reported yet.")
        return table
    paths = leaderboard.write(table, experiment_dir)
    push_outputs(experiment_dir)
    trials = store.load(experiment_dir).trials
    print(leaderboard.format_table(table, top))
    print(f"\n{len(table)} trials; statuses: "
          + ", ".join(f"{n} {s}" for s, n in table["status"].value_counts().items())
          + f"; {store.compute_used(trials)}")
    if pareto.FEASIBLE in table:
        print(_objectives_line(s, table))
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
    failed = diagnose.failure_warning(trials)
    undefined = diagnose.undefined_warning(trials, metric)
    for line in warnings + ([failed] if failed else []) + ([undefined] if undefined else []):
        print(f"warning: {line}", file=sys.stderr)
    planned = plan_check.comparison_or_warning(experiment_dir, trials)
    if planned is not None:
        print("\n" + plan_check.format_comparison(planned, (forecast.read(experiment_dir) or {}).get("timing_source")))
    print("leaderboard: " + ", ".join(str(p) for p in paths))
    return table


def _objectives_line(s, table: pd.DataFrame) -> str:
    """What a table of several objectives or constraints was ranked by, and how many trials
    are on the front and feasible."""
    feasible = int(table[pareto.FEASIBLE].sum())
    required = f" (constraints: {', '.join(c.text for c in s.constraints)})" if s.constraints else ""
    at = f"the epoch where {s.metric} was best (the weights export writes)"
    if pareto.PARETO_RANK not in table:
        return f"{feasible} of {len(table)} trials feasible{required}, ranked first; constraints judged at {at}"
    on_front = int(((table[pareto.PARETO_RANK] == 1) & table[pareto.FEASIBLE]).sum())
    goals = ", ".join(f"{o.metric} ({o.mode})" for o in s.objectives)
    return (f"Pareto front of {goals}: {_trials(on_front)} (pareto_rank 1); {feasible} of {len(table)} feasible"
            f"{required}; ranked by feasibility, front, then crowding distance; each value read at {at}")


def _trials(n: int) -> str:
    return f"{n} trial" + ("" if n == 1 else "s")


def _finish(experiment_dir: Path) -> int:
    """After a sweep: the leaderboard, and an exit code that says how it went (exit_codes.py)."""
    table = _print_leaderboard(experiment_dir)
    unfinished = int((table["status"] == "unfinished").sum()) if len(table) else 0
    # Ctrl-C between one trial's end and the next one's creation leaves no trial unfinished
    not_started = sweep.planned_trials(experiment.load_spec(experiment_dir)) - len(table)
    if unfinished or not_started > 0:
        missing = f"{unfinished} trials unfinished" + (f" and {not_started} not started" if not_started > 0 else "")
        print(f"\ninterrupted with {missing}; finish the sweep with:\n"
              f"  raysweep resume {experiment.home(experiment_dir)}", file=sys.stderr)
        return exit_codes.INTERRUPTED
    if diagnose.all_failed(table):
        groups = diagnose.failure_groups(store.load(experiment_dir).trials)
        print(f"\nerror: all {len(table)} trials failed:\n" + "\n".join(f"  {g}" for g in groups)
              + f"\ntracebacks: each trial's error.txt, and {experiment.home(experiment_dir)}/{logs.LOG_FILE}",
              file=sys.stderr)
        return exit_codes.ALL_TRIALS_FAILED
    return exit_codes.OK


def _run(args: argparse.Namespace) -> int:
    s = spec_load(args.spec, args.set)
    try:
        with logs.quiet_console(args.quiet):
            experiment_dir = sweep.run(s, address=args.address, quiet=args.quiet, dashboard=args.dashboard)
    except KeyboardInterrupt:
        print("\ninterrupted; finish it with: raysweep resume <experiment dir printed above>",
              file=sys.stderr)
        return exit_codes.INTERRUPTED
    print(f"\nresults: {experiment.home(experiment_dir)}")
    return _finish(experiment_dir)


def _resume(args: argparse.Namespace) -> int:
    try:
        with logs.quiet_console(args.quiet):
            experiment_dir = sweep.resume(args.experiment_dir, address=args.address, quiet=args.quiet,
                                          dashboard=args.dashboard)
    except sweep.NothingToResume as done:
        print(done)
        return exit_codes.OK
    except KeyboardInterrupt:
        print(f"\ninterrupted; finish it with: raysweep resume {args.experiment_dir}", file=sys.stderr)
        return exit_codes.INTERRUPTED
    return _finish(experiment_dir)


def _lr_find(args: argparse.Namespace) -> int:
    s = spec_load(args.spec, args.set)
    outcome = lr_find.run(s, address=args.address)
    print(lr_find.format_outcome(outcome))
    print(f"\ncurves: {outcome.experiment_dir / lr_find.CURVES_FILE}\n"
          f"plot:   {outcome.experiment_dir / lr_find.PLOT_FILE}")
    if all(math.isnan(t.fit_learning_rate) for t in outcome.tests):   # what a test that failed records
        print(f"\nerror: every range test failed; tracebacks in {outcome.experiment_dir / logs.LOG_FILE}",
              file=sys.stderr)
        return exit_codes.ALL_TRIALS_FAILED
    if outcome.low is None:
        return exit_codes.NOTHING_FOUND
    if args.write_spec:
        path = lr_find.write_spec(s, outcome.low, outcome.high, args.write_spec)
        print(f"spec:   {path} (params.learning_rate over {outcome.low:.2g} .. {outcome.high:.2g})")
    return exit_codes.OK


def _io_search(args: argparse.Namespace) -> int:
    s = spec_load(args.spec, args.set)
    experiment_dir, table = io_search.run(s, address=args.address)
    print(io_search.format_table(table))
    best = io_search.best_settings(table)
    if not best:
        print(f"\nerror: every setting failed (the error column); tracebacks in {experiment_dir / logs.LOG_FILE}",
              file=sys.stderr)
        return exit_codes.ALL_TRIALS_FAILED
    top = table.iloc[0]
    print(f"\nfastest: {', '.join(f'{k}={v}' for k, v in best.items())} "
          f"({top[io_search.OBJECTIVE]:,.0f} samples/s)")
    print(f"results: {', '.join(str(experiment_dir / f) for f in io_search.RESULTS_FILES)}")
    if args.write_spec:
        print(f"spec:    {io_search.write_spec(s, best, args.write_spec)}")
    return exit_codes.OK


def _rank(args: argparse.Namespace) -> int:
    experiment_dir = experiment.local_dir(args.experiment_dir)
    s = experiment.load_spec(experiment_dir)  # a clear error for a directory that is not one
    if args.group_by and args.group_by not in s.tuned:
        raise SpecError([f"--group-by {args.group_by}: not a tuned parameter of this experiment."
                         f"{did_you_mean(args.group_by, s.tuned)} Tuned: {', '.join(s.tuned)}."])
    _print_leaderboard(experiment_dir, metric=args.metric, mode=args.mode, top=args.top,
                       group_by=args.group_by)
    return exit_codes.OK


def _export(args: argparse.Namespace) -> int:
    experiment_dir = experiment.local_dir(args.experiment_dir)
    chosen_by = picks.from_options(experiment.load_spec(experiment_dir), pick=args.pick, objective=args.objective,
                                   constraints=args.constraint)
    try:
        to = export.export(experiment_dir, args.to, metric=args.metric, mode=args.mode, min_metric=args.min_metric,
                           trial=args.trial, export_format=args.export_format, pick=chosen_by)
    except export.ThresholdMissed as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return exit_codes.NOTHING_FOUND
    except champion.NoneMeets as exc:
        print(f"refused: {exc} Nothing exported.", file=sys.stderr)
        return exit_codes.NOTHING_FOUND
    card = json.loads((to / export.CARD_FILE).read_text())
    top = card["champion"]
    what = next((f"{label} of epoch {card[key]['epoch']}" for key, label in
                 (("model", card.get("family")), ("weights", "weights"), ("state", "the trial's state")) if key in card), "")
    timed = (f"; one row in {card['inference']['latency_ms_one_row']:.3g} ms on CPU"
             if "inference" in card and card.get("formats") != ["onnx"] else "")
    if "onnx" in card:
        check = card["onnx"]["check"]
        timed += (f"; ONNX within {check['max_abs_diff']:.2g} of the eager model on {check['rows']} val rows, one row in "
                  f"{card['onnx']['inference']['latency_ms_one_row']:.3g} ms with onnxruntime")
    print(f"exported trial {top['trial']} ({top['metric']} {top['value']:.4g}, {what}) to {to}: "
          f"{', '.join(card['files'])}{timed}")
    choice = card.get("choice")
    if choice:
        front = f"{_trials(len(choice['front']))} on the front, " if "front" in choice else ""
        print(f"  chosen: {choice['rule']} ({front}{choice['feasible_trials']} feasible); the card's `choice` records it")
    return exit_codes.OK


def _model_to_run(args: argparse.Namespace) -> Path:
    """The model directory `predict` runs: the one named, or the champion `registry:NAME` names."""
    if args.model_dir and args.model:
        raise UserError(f"predict takes one model: {args.model_dir} or --model {args.model}, not both")
    given = args.model or args.model_dir
    if not given:
        raise UserError("predict needs a model: an exported model directory, or --model registry:NAME for the "
                        "champion `raysweep champion` registered")
    if not given.startswith(registry.SCHEME):
        return Path(given)
    name = given.removeprefix(registry.SCHEME)
    where = registry.find(args.registry)
    version, model_dir = registry.open_registry(where).fetch(name)
    print(f"registry:{name} is version {version.version} in {where}: trial {version.record.get('trial')} of "
          f"{version.record.get('experiment')}")
    return model_dir


def _predict(args: argparse.Namespace) -> int:
    frame, metrics = export.predict(_model_to_run(args), args.data, split=args.split, out=args.out,
                                    runtime_format=args.runtime_format)
    print(f"{len(frame)} predictions for {args.data} ({args.split})" + (f" written to {args.out}" if args.out else ""))
    if metrics:   # scored on the split asked for: test_auc, not val_auc, for --split test
        print("  " + "  ".join(f"{args.split}_{k.removeprefix('val_')} {v:.4g}" for k, v in metrics.items()))
    if not args.out:
        print(frame.head(5).to_string(index=False))
    return exit_codes.OK


def _ensemble(args: argparse.Namespace) -> int:
    card = ensemble.build(experiment.local_dir(args.experiment_dir), args.to, top=args.top)
    members = ", ".join(f"{m['trial']} ({m['family']})" for m in card["ensemble"]["members"])
    verdict = ("better than the champion: a candidate to deploy in its place" if card["candidate"]
               else "not better than the champion; deploy the champion")
    print(f"ensemble of {len(card['ensemble']['members'])}: {members}\n  {card['metric']} {card['value']:.4g} on val "
          f"(champion {card['champion']['trial']}: {card['champion']['value']:.4g}), {verdict}\n  written to {args.to}")
    return exit_codes.OK


def _evaluate(args: argparse.Namespace) -> int:
    experiment_dir = experiment.local_dir(args.experiment_dir)
    record = evaluate.evaluate(experiment_dir, tuple(args.model), again=args.again)
    top = record["champion"]
    (metric, value), = top["validation"].items()
    shown = "  ".join(f"{k} {v:.4g}" for k, v in top["test"].items())
    print(f"the test split ({record['rows']} rows), scored once:\n  champion {top['trial']} ({metric} {value:.4g} "
          f"on val): {shown}")
    for model_dir, scores in record["models"].items():
        print(f"  {model_dir}: " + "  ".join(f"{k} {v:.4g}" for k, v in scores.items()))
    print(f"recorded in {experiment_dir / 'test_evaluation.json'}" + (" and the model cards" if record["models"] else ""))
    experiment.push(experiment_dir, [evaluate.EVALUATION_FILE])   # an experiment at a URI gets its record too
    return exit_codes.OK


# Each command's handler, by the name the parser records.
COMMANDS = {"run": _run, "resume": _resume, "lr-find": _lr_find,
            "io-search": _io_search, "rank": _rank, "export": _export,
            "predict": _predict, "ensemble": _ensemble, "evaluate": _evaluate}
