"""`raysweep playbook`: io-search, lr-find, the search on the spec they narrow, report and export.

The phases and their record are phases/playbook.py's; this wires in the export (deploy sits
beside phases, so the command hands deploy.export's in) and says how it went: a line as each
phase starts and its decision when it ends, then where everything is. Exit codes as each phase's
own command (cli/exit_codes.py): 1 where a phase found nothing (no LR range, a champion below
--min-metric), 3 where every trial of a phase failed, 130 interrupted; each with the command to
go on.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from raysweep.analysis import champion
from raysweep.cli import exit_codes
from raysweep.deploy import export
from raysweep.errors import UserError
from raysweep.experiment import playbook as record
from raysweep.phases import playbook
from raysweep.runner import logs
from raysweep.spec import load as spec_load


def export_champion(experiment_dir: Path, to: Path, min_metric: float | None) -> dict:
    """The playbook's export phase: `raysweep export EXPERIMENT --to TO --min-metric X`; returns
    the model card. A champion below the threshold (or none meeting the spec's constraints)
    stops the playbook with the command that exports it by hand."""
    try:
        export.export(experiment_dir, to, min_metric=min_metric)
    except (export.ThresholdMissed, champion.NoneMeets) as exc:
        raise playbook.Stopped(f"{exc} Another threshold: raysweep playbook --resume {to.parent} --min-metric X",
                               f"raysweep export {experiment_dir} --to {to}") from None
    return json.loads((to / export.CARD_FILE).read_text())


def _directory(args: argparse.Namespace) -> Path:
    """The playbook to run: a new one for SPEC, or the one --resume names."""
    if bool(args.spec) == bool(args.resume):
        raise UserError("playbook takes a spec to start (raysweep playbook SPEC) or --resume DIR to go on with one, "
                        + ("not both" if args.spec else "and got neither"))
    if args.resume:
        if args.set:
            raise UserError(f"--set changes the spec of a new playbook; --resume {args.resume} goes on with the spec "
                            "it started with (its raysweep_spec.yaml)")
        return record.find(args.resume)
    directory = playbook.start(spec_load(args.spec, args.set), min_metric=args.min_metric)
    print(f"playbook: {directory}")
    return directory


def _playbook(args: argparse.Namespace) -> int:
    directory = _directory(args)
    try:
        with logs.quiet_console(args.quiet):
            done = playbook.run(directory, exporter=export_champion, address=args.address, quiet=args.quiet,
                                stop_after=args.stop_after, min_metric=args.min_metric)
    except playbook.Stopped as stop:
        print(f"\nstopped: {stop.reason}\ngo on by hand: {stop.command}\nrecord: {directory / record.RECORD_FILE}",
              file=sys.stderr)
        return exit_codes.ALL_TRIALS_FAILED if stop.all_failed else exit_codes.NOTHING_FOUND
    except (playbook.Interrupted, KeyboardInterrupt):
        print(f"\ninterrupted; go on with: raysweep playbook --resume {directory}", file=sys.stderr)
        return exit_codes.INTERRUPTED
    phases = done["phases"]
    if phases["export"]["status"] == record.DONE:
        print(f"\nchampion: {phases['export']['decision']['model_dir']}\n"
              f"report:   {phases['report']['decision']['path']}\n"
              f"record:   {directory / record.RECORD_FILE}")
    return exit_codes.OK


COMMANDS = {"playbook": _playbook}
