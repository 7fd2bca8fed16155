"""The commands that draw: report and plots.

A module of their own because matplotlib takes half a second to import, which every `raysweep
run` waited for while they lived beside it (bench/startup.py).
"""

from __future__ import annotations

import argparse

from raysweep import experiment
from raysweep.analysis import plots, report
from raysweep.cli import exit_codes
from raysweep.cli.commands import push_outputs


def _report(args: argparse.Namespace) -> int:
    experiment_dir = experiment.local_dir(args.experiment_dir)
    experiment.load_spec(experiment_dir)  # a clear error for a directory that is not one
    print(f"report: {report.write(experiment_dir, args.out)}")
    push_outputs(experiment_dir)
    return exit_codes.OK


def _plots(args: argparse.Namespace) -> int:
    experiment_dir = experiment.local_dir(args.experiment_dir)
    experiment.load_spec(experiment_dir)
    for name, path in plots.all_plots(experiment_dir, args.out).items():
        print(f"{name}: {path}")
    push_outputs(experiment_dir)
    return exit_codes.OK


COMMANDS = {"report": _report, "plots": _plots}
