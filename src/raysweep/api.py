"""raysweep from Python: what the `run`, `resume` and `rank` commands do, for notebooks and scripts.

    import raysweep
    results = raysweep.run("search_spaces/glideator_asha_random.yaml", overrides={"search.num_samples": 8})
    results.leaderboard().head()

    sweep = raysweep.run(spec, wait=False)      # in the background: watch `sweep.leaderboard()` grow
    results = sweep.wait()

A mistake is the `raysweep.UserError` (a `SpecError` for a spec) the command would print, with
the same text (`str(error)`, one problem a line). `run` starts a local Ray the first time, or
joins `address`; later calls reuse it. Ray's fixes (runner/ray_fixes) are installed only while a
sweep runs, so a kernel holds none of them between sweeps.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import yaml

from raysweep import experiment
from raysweep.analysis import champion as champions
from raysweep.analysis import forecast, store
from raysweep.analysis import leaderboard as ranking
from raysweep.errors import UserError
from raysweep.phases import plan as plans
from raysweep.phases import sweep
from raysweep.runner import logs
from raysweep.runner.session import start_ray
from raysweep.spec import Spec, SpecError, validate
from raysweep.spec import load as _load_spec

Overrides = Mapping[str, object] | Sequence[str] | None


def _as_set_lines(overrides: Overrides) -> list[str]:
    """`{"search.num_samples": 8}` as the `--set search.num_samples=8` the command line takes
    (each value written as YAML, so a list or a mapping means what it would in the spec)."""
    if overrides is None:
        return []
    if isinstance(overrides, Mapping):
        return [f"{key}={_as_yaml(value)}" for key, value in overrides.items()]
    if isinstance(overrides, str):
        raise UserError(f"overrides: a mapping like {{'search.num_samples': 8}} or a list of 'key=value', "
                        f"got the string {overrides!r}")
    return [str(line) for line in overrides]


def _plain(value):
    """A notebook's values as YAML writes them: paths as strings, numpy's numbers and arrays as
    Python's, tuples as lists."""
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "tolist") and callable(value.tolist):   # a numpy scalar or array
        return _plain(value.tolist())
    return value


def _as_yaml(value) -> str:
    try:
        text = yaml.safe_dump(_plain(value), default_flow_style=True, width=float("inf"))
    except yaml.YAMLError as exc:
        raise UserError(f"overrides: {value!r} cannot be written as a spec value ({exc})") from None
    return text.strip().removesuffix("...").strip()


def load_spec(path: str | Path, overrides: Overrides = None) -> Spec:
    """A spec file, with overrides, validated as `raysweep validate` does (a SpecError lists
    every problem)."""
    return _load_spec(path, _as_set_lines(overrides))


def _spec_of(spec_or_path: Spec | str | Path, overrides: Overrides) -> Spec:
    if isinstance(spec_or_path, Spec):
        if overrides:   # overrides apply to what the spec was made of
            return validate(spec_or_path.given or spec_or_path.raw, source=spec_or_path.source,
                            overrides=_as_set_lines(overrides))
        return spec_or_path
    return load_spec(spec_or_path, overrides)


@dataclass(frozen=True)
class Results:
    """An experiment's results as the commands read them: the results store's two tables, the
    leaderboard, the champion, and how the sweep ended."""

    experiment_dir: Path

    @property
    def spec(self) -> Spec:
        return experiment.load_spec(self.experiment_dir)

    @property
    def trials(self) -> pd.DataFrame:
        """One row per trial: its parameters, status, best and last metrics (analysis.store)."""
        return store.load(self.experiment_dir).trials

    @property
    def curves(self) -> pd.DataFrame:
        """One row per report: trial, epoch and every reported metric."""
        return store.load(self.experiment_dir).curves

    def leaderboard(self, metric: str | None = None, mode: str | None = None) -> pd.DataFrame:
        """The trials best first, as `raysweep rank` ranks them (the spec's objective by default)."""
        return ranking.leaderboard(self.experiment_dir, metric=metric, mode=mode)

    def champion(self, metric: str | None = None, mode: str | None = None) -> champions.Champion:
        """The trial `export` would export: its id, value and config."""
        return champions.select(self.experiment_dir, metric, mode)

    @property
    def status(self) -> str:
        """"finished", "interrupted" (trials unfinished or not started: `raysweep.resume` goes
        on), or "all failed" (as the command's exit code says, cli/exit_codes.py)."""
        return sweep.outcome(self.experiment_dir)

    def __repr__(self) -> str:
        return f"Results({experiment.home(self.experiment_dir)!r})"


def load(experiment_dir: str | Path) -> Results:
    """The results of an experiment (a directory, or the URI of one in a bucket)."""
    local = experiment.local_dir(experiment_dir)
    experiment.load_spec(local)   # a clear error for a folder that is no experiment
    return Results(local)


def run(spec_or_path: Spec | str | Path, overrides: Overrides = None, *, address: str | None = None,
        quiet: bool = False, dashboard: bool = False, wait: bool = True) -> Results | Sweep:
    """Run a sweep: a spec file (with overrides, as `--set` takes them) or a loaded `Spec`.

    Returns its `Results` once it ends (Ctrl-C or the notebook's stop button ends it early, as
    an interrupted sweep that `resume` finishes). With `wait=False` it runs in the background
    and returns a `Sweep` at once: its leaderboard grows as trials end, and `wait()` gives the
    `Results`. `quiet` leaves out the per-trial lines and the live status; `dashboard` starts
    Ray's dashboard with a local Ray and prints its URL (as `raysweep run --dashboard`).
    """
    spec = _spec_of(spec_or_path, overrides)
    _refused_while_one_runs()
    with logs.quiet_console(quiet):
        _ray_for(spec, address, dashboard)
        if wait:
            return Results(sweep.run(spec, address=address, quiet=quiet, dashboard=dashboard))
    return Sweep(spec, address=address, quiet=quiet, dashboard=dashboard)


def plan(spec_or_path: Spec | str | Path, overrides: Overrides = None, *, cluster: str | Path | None = None,
         probe: bool = False, prices: Mapping[str, float] | None = None,
         address: str | None = None) -> forecast.Prediction:
    """What the sweep will cost before it runs, as `raysweep plan` prints it: a `Prediction`
    (trials, slots, epochs and their 10th-90th percentile, wall_s, cpu_hours, gpu_hours,
    cost_usd, nodes, assumptions; `print(forecast.format_prediction(p))` shows it as the
    command does). `cluster`: a `ray up` config; `probe`: time a short run of the baseline first
    (starts Ray); `prices`: USD per hour by node type, over the spec's `cost:`."""
    spec = _spec_of(spec_or_path, overrides)
    if probe:
        _refused_while_one_runs()
    return plans.plan(spec, cluster=cluster, probe=probe, prices=dict(prices or {}), address=address)


# The sweep running in the background, if any. One sweep at a time per process: Ray's fixes,
# the console's filters and the quiet setting are the process's.
_background: list[Sweep] = []


def _refused_while_one_runs() -> None:
    if _background and not _background[-1].done():
        raise UserError(f"the sweep {_background[-1].spec.name} runs in the background of this process; "
                        "wait for it (sweep.wait()) before starting another")


def _ray_for(spec: Spec, address: str | None, dashboard: bool) -> None:
    """Start (or join) Ray for the API, in the caller's thread and without Ray's start-up chatter.
    A local Ray starts with its dashboard whatever the first sweep needs: a later sweep in the
    same kernel may use TorchTrainers, which need its State API, and Ray is started only once."""
    with logs.console_filtered():
        start_ray(address, spec if address else None, dashboard=dashboard)


def resume(experiment_dir: str | Path, *, address: str | None = None, quiet: bool = False,
           dashboard: bool = False) -> Results:
    """Finish an interrupted sweep; one whose every trial has ended is returned as it is."""
    _refused_while_one_runs()
    try:
        with logs.quiet_console(quiet):
            return Results(sweep.resume(experiment_dir, address=address, quiet=quiet, dashboard=dashboard))
    except sweep.NothingToResume:
        return load(experiment_dir)


class Sweep:
    """A sweep running in the background of this process (`run(..., wait=False)`).

    Ray is started (or joined) first, in the caller's thread (`run`): Ray's own processes end with
    the thread that started them (they share its fate), and the sweep's thread ends with the sweep.
    The driver loop runs in that thread of its own, so a notebook's cells stay free to look at it.
    It runs to its end: Ctrl-C (a notebook's stop button) reaches the main thread only, so a
    sweep to stop halfway is one to run with `wait=True`.
    """

    def __init__(self, spec: Spec, *, address: str | None, quiet: bool, dashboard: bool):
        self.spec = spec
        self._created = threading.Event()
        self._experiment_dir: Path | None = None
        self._ended: Path | BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(address, quiet), name=f"raysweep {spec.name}",
                                        daemon=True)
        self._thread.start()
        _background[:] = [self]
        self._created.wait()
        if isinstance(self._ended, BaseException):   # it could not start (storage, a tracker): say so now
            raise self._ended

    def _run(self, address: str | None, quiet: bool) -> None:
        def created(experiment_dir: Path) -> None:
            self._experiment_dir = experiment_dir
            self._created.set()

        try:
            with logs.quiet_console(quiet):
                self._ended = sweep.run(self.spec, address=address, quiet=quiet, on_created=created)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller by wait()
            self._ended = exc
        finally:
            self._created.set()

    @property
    def experiment_dir(self) -> Path | None:
        return self._experiment_dir

    def done(self) -> bool:
        return not self._thread.is_alive()

    def leaderboard(self) -> pd.DataFrame:
        """The trials that have reported so far, best first (empty before the first report)."""
        if self._experiment_dir is None:
            return pd.DataFrame()
        return ranking.leaderboard(self._experiment_dir)

    def wait(self, timeout: float | None = None) -> Results:
        """Block until the sweep ends; its `Results`, or the error that ended it."""
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise TimeoutError(f"the sweep {self.spec.name} is still running after {timeout} s")
        if isinstance(self._ended, BaseException):
            raise self._ended
        return Results(self._ended)

    def __repr__(self) -> str:
        state = "done" if self.done() else "running"
        return f"Sweep({self.spec.name!r}, {state}, {self._experiment_dir})"


__all__ = ["Results", "Sweep", "SpecError", "UserError", "load", "load_spec", "plan", "resume", "run"]
