"""The `raysweep` argument parser. `raysweep data NAME` is built from the workload registry."""

from __future__ import annotations

import argparse
from pathlib import Path

from raysweep import __version__
from raysweep.errors import UserError
from raysweep.workloads import WORKLOADS, DataCommand, load_workload, references
from raysweep.workloads.contract import COMMON_DATA_OPTIONS

TABLE_SUFFIXES = (".csv", ".tsv", ".parquet", ".pq")
DESCRIPTION = ("Hyperparameter sweeps of PyTorch workloads on Ray. In the order a study uses them: data, then "
               "validate, plan (what a sweep will cost), lr-find and io-search, run (resume to finish one "
               "interrupted), then rank, report and "
               "plots, export, ensemble and predict, evaluate once on the held-out test split, and champion across "
               "experiments into a model registry; playbook runs io-search, lr-find, run, report and export in one go.")
EPILOG = "`raysweep COMMAND --help` shows a command's arguments; search_spaces/ holds specs ready to run."
PLAYBOOK_PHASES = ("io", "lr", "search", "report", "export")   # experiment/playbook.py's PHASES (no Ray imported here)


def data_commands() -> dict[str, DataCommand]:
    """`raysweep data NAME` -> the data command of the workload that declares it (read from the registry)."""
    return {w.DATA.name: w.DATA for w in WORKLOADS.values()}


def user_data_command(argv: list[str]) -> tuple[str, DataCommand] | None:
    """`raysweep data ./my_workload.py ...` (or `my_project.models.brake`): the user's workload's
    data command, under the reference as typed. Raises WorkloadError where it does not load."""
    if len(argv) < 2 or argv[0] != "data" or argv[1] in data_commands() or argv[1].startswith("-"):
        return None
    typed = argv[1]
    if not (references.is_file(typed) or "." in typed):
        return None   # an unknown name: argparse lists the known ones
    if typed.lower().endswith(TABLE_SUFFIXES):
        raise UserError(f"{typed} is a table, not a workload; import it with: raysweep data import {typed} "
                        "--target COL --task regression|binary|multiclass|multilabel --out DIR")
    return typed, load_workload(references.absolute(typed, Path.cwd())).DATA


def add_data_command(generators, command: DataCommand, invoked_as: str | None = None) -> None:
    """`raysweep data NAME`: each option reaches the writer by its `dest` keyword."""
    parser = generators.add_parser(invoked_as or command.name, help=command.help)
    parser.set_defaults(data_command=command)
    out, seed, fmt = COMMON_DATA_OPTIONS
    parser.add_argument(out, dest=COMMON_DATA_OPTIONS[out], required=True, help="output directory")
    parser.add_argument(seed, dest=COMMON_DATA_OPTIONS[seed], type=int, default=0)
    parser.add_argument(fmt, dest=COMMON_DATA_OPTIONS[fmt], choices=("parquet", "webdataset"), default="parquet")
    for option in command.options:
        # argparse formats help with %: a user's "70 % of cells" must reach it as text
        kwargs = dict(type=option.type, help=option.help.replace("%", "%%") or None, metavar=option.metavar)
        if option.choices:
            kwargs["choices"] = option.choices
        if option.positional:
            parser.add_argument(option.dest, **kwargs)
        else:
            parser.add_argument(option.flag, dest=option.dest, default=option.default, required=option.required,
                                **kwargs)


def add_watch_options(command: argparse.ArgumentParser) -> None:
    """What a sweep shows while its trials run (runner/live_status.py)."""
    command.add_argument("--quiet", action="store_true",
                         help="no live status, per-trial lines or progress messages; warnings, errors and the "
                              "leaderboard only")
    command.add_argument("--dashboard", action="store_true",
                         help="start Ray's dashboard (on 127.0.0.1) for in-trial sweeps too, and print its URL")


def build_parser(user_data: tuple[str, DataCommand] | None = None) -> argparse.ArgumentParser:
    """The parser; `user_data` adds the data command of a user's workload (`user_data_command`)."""
    parser = argparse.ArgumentParser(prog="raysweep", description=DESCRIPTION, epilog=EPILOG)
    parser.add_argument("--version", action="version", version=f"raysweep {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    data = sub.add_parser("data", help="generate a demo dataset, import your own table, or write your workload's data",
                          description="NAME: a built-in dataset, `import` for a table, or a workload of your own "
                                      "by file (./my_workload.py) or module (my_project.models.brake), whose DATA "
                                      "command writes its data.")
    generators = data.add_subparsers(dest="generator", required=True)

    for command in data_commands().values():
        add_data_command(generators, command)
    described = generators.add_parser(
        "describe", help="make shards written elsewhere (Parquet, or WebDataset .tar) a dataset: writes their meta.json",
        description="DIR holds train/ and val/ (and optionally test/) folders of .parquet or .tar shards; this writes "
                    "DIR/meta.json for them without copying anything.")
    described.set_defaults(describe=True)
    described.add_argument("data_dir", metavar="DIR")
    described.add_argument("--target", required=True, metavar="COL", help="the column to predict (read as labels)")
    described.add_argument("--task", choices=("regression", "binary", "multiclass", "multilabel"))
    described.add_argument("--format", dest="fmt", choices=("auto", "parquet", "webdataset"), default="auto")
    described.add_argument("--drop", default="", metavar="COL[,COL...]", help="columns the batches leave out")
    described.add_argument("--overwrite", action="store_true", help="replace a meta.json that is there")
    if user_data:
        add_data_command(generators, user_data[1], invoked_as=user_data[0])

    overrides = dict(action="append", default=[], metavar="KEY=VALUE",
                     help="override a spec value, e.g. --set search.num_samples=4 (repeatable)")
    validate = sub.add_parser("validate", help="check a sweep spec without starting Ray")
    validate.add_argument("spec")
    validate.add_argument("--set", **overrides)

    def spec_command(name: str, help: str, write_spec: str | None = None) -> argparse.ArgumentParser:
        """A command that runs a spec on Ray: SPEC, --set, --address and maybe --write-spec."""
        command = sub.add_parser(name, help=help)
        command.add_argument("spec")
        command.add_argument("--set", **overrides)
        command.add_argument("--address", help="an existing Ray cluster (default: $RAY_ADDRESS, else a local Ray)")
        if write_spec:
            command.add_argument("--write-spec", metavar="OUT", help=write_spec)
        return command

    add_watch_options(spec_command("run", "run a sweep"))
    spec_command("lr-find", "steps to fit and an LR range test; suggests a learning-rate range",
                 write_spec="write a copy of the spec with the suggested range")
    spec_command("io-search", "time the data-path settings of io_search.grid; rank by samples/s",
                 write_spec="write a copy of the spec with the fastest settings")

    book = sub.add_parser("playbook", help="io-search, lr-find, the search on the spec they narrow, report and export "
                          "of the champion, in one command; --resume DIR goes on after a stop or a kill",
                          description="Runs the phases SPEC configures in order, recording each decision with its "
                                      "evidence in DIR/playbook.json (DIR: storage_path/NAME-playbook-TIMESTAMP).")
    book.add_argument("spec", nargs="?", help="the spec to start a playbook with (or --resume DIR)")
    book.add_argument("--resume", metavar="DIR", help="go on with the playbook in DIR (or the search it ran) from the "
                      "phase it stopped or was killed in; finished phases are not run again")
    book.add_argument("--set", **overrides)
    book.add_argument("--address", help="an existing Ray cluster (default: $RAY_ADDRESS, else a local Ray)")
    book.add_argument("--stop-after", choices=PLAYBOOK_PHASES, help="stop after this phase (--resume goes on)")
    book.add_argument("--min-metric", type=float, metavar="X",
                      help="deployment threshold: export nothing (exit 1) unless the champion reaches X")
    book.add_argument("--quiet", action="store_true",
                      help="no live status, per-trial lines or progress messages; the phases' decisions, warnings "
                           "and errors only")

    planned = sub.add_parser("plan", help="what a sweep will cost before it runs: trials, expected epochs, wall time, "
                             "resource-hours and money, with the assumptions made")
    planned.add_argument("spec")
    planned.add_argument("--set", **overrides)
    planned.add_argument("--cluster", metavar="CLUSTER_YAML",
                         help="plan for the cluster this `ray up` config describes (default: this machine)")
    planned.add_argument("--probe", action="store_true",
                         help="time one short run of the baseline first (starts Ray; a trial of a few epochs)")
    planned.add_argument("--price", action="append", default=[], metavar="NODE_TYPE=USD_PER_HOUR",
                         help="a node type's price (repeatable; `local` for this machine); adds to the spec's cost:")
    planned.add_argument("--address", help="the Ray the probe runs on (default: $RAY_ADDRESS, else a local Ray)")

    resume = sub.add_parser("resume", help="finish an interrupted sweep")
    resume.add_argument("experiment_dir")
    resume.add_argument("--address")
    add_watch_options(resume)

    rank = sub.add_parser("rank", help="leaderboard of an experiment's trials")
    rank.add_argument("experiment_dir")
    rank.add_argument("--metric", help="rank on this metric (default: the spec's)")
    rank.add_argument("--mode", choices=("min", "max"))
    rank.add_argument("--top", type=int, default=10, help="rows to print (default 10; 0 = all)")
    rank.add_argument("--group-by", metavar="PARAM",
                      help="also rank the values of PARAM on the mean over the other parameters (e.g. seeds)")

    rep = sub.add_parser("report", help="one self-contained HTML file: leaderboard, plots, spec, provenance")
    rep.add_argument("experiment_dir")
    rep.add_argument("--out", metavar="FILE", help="default: EXPERIMENT_DIR/report.html")

    plot = sub.add_parser("plots", help="the experiment's plots as PNG files")
    plot.add_argument("experiment_dir")
    plot.add_argument("--out", metavar="DIR", help="default: EXPERIMENT_DIR/plots")

    exp = sub.add_parser("export", help="the best trial as a model directory: TorchScript and/or ONNX and a state_dict, "
                         "or a model family's native file; meta and a model card")
    exp.add_argument("experiment_dir")
    exp.add_argument("--to", required=True, metavar="DIR", help="the model directory to write")
    exp.add_argument("--metric", help="pick the champion on this metric (default: the spec's)")
    exp.add_argument("--mode", choices=("min", "max"))
    exp.add_argument("--trial", metavar="ID", help="export this trial instead of the best (e.g. the best of "
                     "another family: raysweep rank shows the ids)")
    exp.add_argument("--min-metric", type=float, metavar="X",
                     help="deployment threshold: refuse (exit 1) unless the champion reaches X "
                          "(at least X for a metric to maximise, at most X for one to minimise)")
    exp.add_argument("--format", dest="export_format", choices=("torchscript", "onnx", "both"),
                     help="a PyTorch model's format (default torchscript): onnx is checked with onnxruntime against "
                          "the eager model on the val split; needs pip install 'raysweep[onnx]'")
    exp.add_argument("--pick", metavar="'min|max METRIC [where C [and C]...]'",
                     help="choose the champion from the Pareto front of the trials that meet the spec's constraints "
                          "and these, best on METRIC, each read at the epoch the exported weights come from, e.g. "
                          "'min val_loss where latency_ms <= 5'; nobody meets it: refuse (exit 1)")
    exp.add_argument("--objective", metavar="METRIC",
                     help="--pick's METRIC in its direction (the spec's objective's, else the workload's); "
                          "default: the first objective")
    exp.add_argument("--constraint", action="append", default=[], metavar="'METRIC OP NUMBER'",
                     help="a constraint the champion must meet besides the spec's, e.g. 'val_auc >= 0.8' (repeatable)")

    champ = sub.add_parser("champion", help="the best trial across experiments, scored once on test, registered as "
                           "the champion where it beats the one registered (--show: the registry's history)")
    champ.add_argument("experiments", nargs="*", metavar="EXPERIMENT",
                       help="experiment directories, globs ('results/families-*'), URIs, or a folder of them")
    champ.add_argument("--since", metavar="AGE", help="only experiments run in the last AGE (14d, 36h, 2w)")
    champ.add_argument("--metric", help="choose on this validation metric (default: the newest experiment's)")
    champ.add_argument("--mode", choices=("min", "max"))
    champ.add_argument("--min-metric", type=float, metavar="X",
                       help="deployment threshold on the test split: register nothing (exit 1) unless the "
                            "champion's test score reaches X")
    champ.add_argument("--name", help="the registered model (default: WORKLOAD-DATASET, one per workload and dataset)")
    champ.add_argument("--registry", metavar="WHERE",
                       help="a folder, or an MLflow tracking URI (default: the sweeps' MLflow store where they track "
                            "with MLflow, else results/registry; $RAYSWEEP_REGISTRY for --show and predict)")
    champ.add_argument("--format", dest="export_format", choices=("torchscript", "onnx", "both"),
                       help="the registered PyTorch model's format (default torchscript)")
    champ.add_argument("--again", action="store_true",
                       help="score on test an experiment whose test split was scored already for another trial")
    champ.add_argument("--show", action="store_true", help="list each registered model's versions and its champion")

    pred = sub.add_parser("predict", help="predict a dataset split with an exported model, or the registered champion")
    pred.add_argument("model_dir", nargs="?", help="an exported model directory (or registry:NAME)")
    pred.add_argument("--model", metavar="registry:NAME", help="the champion registered as NAME (raysweep champion), "
                      "or a model directory")
    pred.add_argument("--registry", metavar="WHERE", help="where NAME is registered (default: $RAYSWEEP_REGISTRY, "
                      "else results/registry or results/mlflow.db)")
    pred.add_argument("--data", required=True, help="a raysweep dataset directory (Parquet shards)")
    pred.add_argument("--split", default="val", choices=("train", "val", "test"), help="train, val or test (default val)")
    pred.add_argument("--out", help="write the predictions as Parquet")
    pred.add_argument("--format", dest="runtime_format", choices=("torchscript", "onnx"),
                      help="the model file to run where the directory holds both (default: torchscript where it "
                           "holds it, else onnx with onnxruntime)")

    ens = sub.add_parser("ensemble", help="a soft-voting ensemble of the best model-family trials, as a model directory")
    ens.add_argument("experiment_dir")
    ens.add_argument("--top", type=int, default=3, metavar="K", help="members: the K best trials (default 3)")
    ens.add_argument("--to", required=True, metavar="DIR", help="the model directory to write")

    ev = sub.add_parser("evaluate", help="score the champion (and exported models) once on the held-out test split")
    ev.add_argument("experiment_dir")
    ev.add_argument("--model", action="append", default=[], metavar="DIR",
                    help="an exported model or ensemble directory to score too, and whose card records it")
    ev.add_argument("--again", action="store_true", help="score a second time (the test split stops being held out)")
    return parser
