"""The `raysweep` command: data, validate, run, lr-find, io-search, resume, rank, report, plots, export, predict.

User mistakes (a bad spec, missing or corrupt data, a trial that cannot fit) end with one clear
message on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import logging
import sys

from raysweep.cli.parser import build_parser
from raysweep.datasets.shards import DataError
from raysweep.spec import SpecError

EXIT_USAGE = 2


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # Imported once the arguments parse: the commands import Ray (seconds), which `--help`
    # and a mistyped option should not wait for.
    from raysweep.cli.commands import COMMANDS
    from raysweep.runner.resources import SizingError

    logging.basicConfig(level=logging.INFO, format="raysweep: %(message)s")
    try:
        return COMMANDS[args.command](args)
    except SpecError as exc:
        print("\n".join(f"error: {p}" for p in exc.problems), file=sys.stderr)
    except (DataError, SizingError) as exc:
        print(f"error: {exc}", file=sys.stderr)
    return EXIT_USAGE


__all__ = ["EXIT_USAGE", "build_parser", "main"]
