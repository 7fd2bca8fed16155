"""The `raysweep` command: data, validate, plan, lr-find, io-search, run, resume, rank, report, plots, export,
ensemble, predict, evaluate, champion, playbook (parser.py builds them, with a line of help each; `raysweep --help` lists them).

User mistakes (a bad spec, missing or corrupt data, a trial that cannot fit) end with one clear
message on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import atexit
import importlib
import logging
import os
import sys

from raysweep.cli.exit_codes import USAGE as EXIT_USAGE
from raysweep.cli.parser import build_parser, user_data_command
from raysweep.errors import UserError

# Where each command's handler lives. A command imports its module only when it runs:
# `data` and `validate` never import Ray, and the others wait for it (seconds) only once
# their arguments parse, not for `--help` or a mistyped option; `run` does not wait for
# matplotlib, which only the commands that draw import.
HANDLERS = {"data": "raysweep.cli.before_run", "validate": "raysweep.cli.before_run",
            "report": "raysweep.cli.drawing", "plots": "raysweep.cli.drawing", "champion": "raysweep.cli.champion",
            "playbook": "raysweep.cli.playbook", "plan": "raysweep.cli.plan"}
DEFAULT_HANDLERS = "raysweep.cli.commands"


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = build_parser(user_data_command(argv)).parse_args(argv)
        logging.basicConfig(level=logging.INFO, format="raysweep: %(message)s")
        # matplotlib says once that it builds its font cache, and the like: nothing to act on.
        logging.getLogger("matplotlib").setLevel(logging.ERROR)
        handlers = importlib.import_module(HANDLERS.get(args.command, DEFAULT_HANDLERS))
        return handlers.COMMANDS[args.command](args)
    except UserError as exc:
        print("\n".join(f"error: {line}" for line in exc.lines), file=sys.stderr)
    return EXIT_USAGE


def console() -> None:
    """The `raysweep` program: `main`, then its exit without Python's teardown.

    Once a command has done its work, Python's finalisation (freeing torch's, Ray's and pandas'
    modules one by one) took about a second more (bench/startup.py). The exit is Python's own up
    to that point: threads are joined and every exit handler runs (logging's flush among them);
    the last handler, registered first, then ends the process with the command's code. Ray is
    shut down before all that: its own exit handler sleeps half a second for log lines of
    workers that raysweep does not print (`log_to_driver=False`); and with the Ray fix that
    spares it a second's wait on the autoscaler's monitor (runner/ray_fixes, `shutdown_ray`).
    """
    code: list[int] = []
    atexit.register(_end_now, code)   # the first registered runs last
    code.append(main())
    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        ray_fixes = importlib.import_module("raysweep.runner.ray_fixes")  # imported already by every command that starts Ray

        ray_fixes.shutdown_ray()
    sys.exit(code[0])


def _end_now(code: list[int]) -> None:
    """End the process with the command's code, skipping the interpreter's teardown; a command
    that did not return (an exception, Ctrl-C) leaves the exit to Python."""
    if code:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code[0])


__all__ = ["EXIT_USAGE", "build_parser", "console", "main"]
