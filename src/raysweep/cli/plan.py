"""`raysweep plan SPEC`: trials, epochs, wall time, resource-hours and money before a sweep runs
(phases/plan.py), and the assumptions behind them. Only `--probe` starts Ray."""

from __future__ import annotations

import argparse

from raysweep.analysis import forecast
from raysweep.cli import exit_codes
from raysweep.phases import plan
from raysweep.spec import load as spec_load


def _plan(args: argparse.Namespace) -> int:
    s = spec_load(args.spec, args.set)
    prices = plan.parse_prices(args.price)
    prediction = plan.plan(s, cluster=args.cluster, probe=args.probe, prices=prices, address=args.address)
    print(f"plan for {s.source}" + (f" on {args.cluster}" if args.cluster else " on this machine") + ":")
    print(forecast.format_prediction(prediction))
    return exit_codes.OK


COMMANDS = {"plan": _plan}
