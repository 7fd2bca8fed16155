"""`raysweep playbook SPEC`: the Tuning Playbook's phases in order, each deciding for the next.

    io-search (the fastest data settings) -> lr-find (the learning-rate range at that batch size)
    -> the search, on the spec narrowed by both -> report -> export of the champion

Each phase is a function that returns its decision and evidence (`Step`); `run` records it in
the playbook's `playbook.json` (raysweep.experiment.playbook) before the next phase starts, and
a phase the spec does not configure (no `io_search`, no `lr_find`) is recorded as skipped. A
phase recorded as done is not run again: `raysweep playbook --resume DIR` continues with the one
that was running (io-search, lr-find, report and export run again whole; the search resumes as
`raysweep resume` does). A phase that finds nothing raises `Stopped` with the reason and the
command that goes on by hand.

The export is handed in (`Exporter`): deploy sits beside phases, and neither imports the other,
so the command (cli/playbook.py) passes deploy.export's in.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pandas as pd
from ray import tune

from raysweep import experiment
from raysweep.analysis import champion, diagnose, leaderboard, report, store
from raysweep.datasets import location
from raysweep.errors import UserError
from raysweep.experiment import playbook as record
from raysweep.phases import io_search, lr_find, sweep
from raysweep.runner import logs
from raysweep.spec import SNAPSHOT_FILE, Spec, load, validate, write_copy

PHASES = record.PHASES
EVIDENCE_ROWS = 5   # the io-search table's and the leaderboard's top rows kept as evidence

# (the search's experiment, the model directory to write, the threshold) -> the model card;
# raises Stopped where the champion misses the threshold.
Exporter = Callable[[Path, Path, float | None], dict]


@dataclass(frozen=True)
class Step:
    """What a phase decided, what it decided on, and the experiment it ran (if it ran one)."""

    decision: dict
    evidence: dict
    experiment_dir: Path | None = None


class Stopped(Exception):
    """A phase found nothing to go on with: `reason`, and `command` to go on by hand.
    `all_failed`: every trial of the phase failed (exit code 3, as the phase's own command)."""

    def __init__(self, reason: str, command: str, *, all_failed: bool = False):
        super().__init__(reason)
        self.reason, self.command, self.all_failed = reason, command, all_failed


class Interrupted(Exception):
    """The search ended with trials unfinished (Ctrl-C): `--resume` finishes it."""


@dataclass
class Playbook:
    """A playbook being run: its directory and record, the spec as given, and how to run it."""

    directory: Path
    record: dict
    spec: Spec
    exporter: Exporter
    address: str | None = None
    quiet: bool = False
    say: Callable[[str], None] = print

    def entry(self, phase: str) -> dict:
        return self.record["phases"][phase]


def start(s: Spec, *, min_metric: float | None = None) -> Path:
    """`storage_path/<name>-playbook-<timestamp>/` with the spec and a record of pending phases.

    Raises:
        UserError: `storage_path` is a URI (the record is kept in a local folder).
    """
    if location.is_uri(s.storage_path):
        raise UserError(f"storage_path {s.storage_path}: raysweep playbook keeps its record in a local folder; set "
                        "one (--set storage_path=results), or run the phases one by one: raysweep io-search, "
                        "lr-find, run, export")
    directory = experiment.create(s, "playbook")
    record.new(directory, name=s.name, spec_source=s.source, min_metric=min_metric)
    return directory


def run(directory: Path, *, exporter: Exporter, address: str | None = None, quiet: bool = False,
        stop_after: str | None = None, min_metric: float | None = None, say: Callable[[str], None] = print) -> dict:
    """Run the phases not done yet, in order, recording each; returns the record.

    `stop_after`: a phase to stop after (a later `run` goes on); `min_metric`: the deployment
    threshold in place of the recorded one. The playbook is held (experiment.held) meanwhile.

    Raises:
        Stopped: a phase found nothing; the record says so.
        Interrupted: the search was interrupted; the record still has it running.
        UserError: another process runs this playbook, or the spec or its data no longer validate.
    """
    directory = Path(directory)
    with experiment.held(directory, "playbook"):
        book = Playbook(directory, record.read(directory), load(directory / SNAPSHOT_FILE), exporter,
                        address=address, quiet=quiet, say=say)
        if min_metric is not None:
            book.record["min_metric"] = min_metric
            record.write(directory, book.record)
        ran_export = False
        for number, phase in enumerate(PHASES, 1):
            ran_export |= _phase(book, phase, f"[{number}/{len(PHASES)}] {record.LABELS[phase]}")
            if phase == stop_after and phase != PHASES[-1]:
                say(f"stopped after {record.LABELS[phase]}, as asked; go on with: raysweep playbook --resume {directory}")
                break
        if ran_export and book.entry("report")["status"] == record.DONE:
            report.write(book.entry("search")["experiment_dir"])   # its Playbook section now holds the export
        return book.record


def _phase(book: Playbook, phase: str, title: str) -> bool:
    """Run one phase unless it is finished; record its start, decision or stop. True if it ran."""
    entry = book.entry(phase)
    if entry["status"] in record.FINISHED:
        book.say(f"{title}: {entry['status']} before: {_decided(book, phase)}")
        return False
    why_not = _not_configured(book.spec, phase)
    if why_not:
        record.set_phase(book.directory, book.record, phase, record.SKIPPED, reason=why_not)
        book.say(f"{title}: skipped ({why_not})")
        return False
    record.set_phase(book.directory, book.record, phase, record.RUNNING, reason=None, command=None)
    book.say(f"{title}: {STARTS[phase](book)} ...")
    try:
        step = PHASE_STEPS[phase](book)
    except Stopped as stop:
        record.set_phase(book.directory, book.record, phase, record.STOPPED, reason=stop.reason, command=stop.command)
        raise
    record.set_phase(book.directory, book.record, phase, record.DONE, decision=step.decision, evidence=step.evidence,
                     **({"experiment_dir": str(step.experiment_dir)} if step.experiment_dir else {}))
    book.say(f"      {_decided(book, phase)}")
    return True


def _decided(book: Playbook, phase: str) -> str:
    """The phase's decision and evidence in words (experiment/playbook.py's summary)."""
    return record.line(record.summary(book.record)[PHASES.index(phase)])


def _not_configured(s: Spec, phase: str) -> str:
    if phase == "io" and s.io_search is None:
        return "the spec has no io_search section"
    if phase == "lr" and "lr_find" not in s.raw:
        return "the spec has no lr_find section"
    return ""


# --- the spec each phase runs on ----------------------------------------------------------------

def narrowed(book: Playbook, upto: str) -> dict:
    """The spec's raw mapping narrowed by the decisions recorded before phase `upto`: io-search's
    settings (io_search.narrowed), then lr-find's range (lr_find.narrowed)."""
    s = book.spec
    io, lr = book.entry("io"), book.entry("lr")
    if io["status"] == record.DONE:
        s = validate(io_search.narrowed(s, io["decision"]["settings"]),
                     source=f"{s.source} (with the io-search settings)")
    if upto != "lr" and lr["status"] == record.DONE:
        return lr_find.narrowed(s, lr["decision"]["low"], lr["decision"]["high"])
    return s.raw


def search_spec(book: Playbook) -> Path:
    """`search_spec.yaml`: the spec narrowed by the phases done so far, validated as written."""
    done = [f"{record.LABELS[p]} ({record.summary(book.record)[i]['decision']})"
            for i, p in enumerate(("io", "lr")) if book.entry(p)["status"] == record.DONE]
    return write_copy(narrowed(book, "search"), book.directory / record.SEARCH_SPEC_FILE, [
        f"{book.record['spec']} as the playbook in {book.directory} searches it, narrowed by",
        ("; ".join(done) or "no phase: the spec's own settings") + "."])


# --- the phases ---------------------------------------------------------------------------------

def _io(book: Playbook) -> Step:
    experiment_dir, table = io_search.run(book.spec, address=book.address)
    best = io_search.best_settings(table)
    if not best:
        errors = sorted(set(table["error"]) - {""})
        raise Stopped(f"every io-search setting failed ({'; '.join(errors)[:300]}); tracebacks in "
                      f"{experiment_dir / logs.LOG_FILE}; the search can run on the spec's own data settings",
                      f"raysweep run {search_spec(book)}", all_failed=True)
    top = _records(table.head(EVIDENCE_ROWS).drop(columns=["timed_steps", "timed_rows"], errors="ignore"))
    return Step({"settings": best, "samples_per_s": float(table.iloc[0][io_search.OBJECTIVE])},
                {"settings": len(table), "top": top, "table": str(experiment_dir / io_search.RESULTS_FILES[0])},
                experiment_dir)


def _lr(book: Playbook) -> Step:
    s = validate(narrowed(book, "lr"), source=f"{book.spec.source} (with the io-search settings)")
    outcome = lr_find.run(s, address=book.address)
    tests = [{"over": t.over, "steps_to_fit": t.steps_to_fit, "epochs_to_fit": t.epochs_to_fit,
              "steepest_lr": t.suggestion.steepest_lr if t.suggestion else None,
              "min_loss_lr": t.suggestion.min_loss_lr if t.suggestion else None,
              "low": t.suggestion.low if t.suggestion else None, "high": t.suggestion.high if t.suggestion else None,
              "error": t.error} for t in outcome.tests]
    where = outcome.experiment_dir
    if outcome.low is None:
        reason = "; ".join(sorted({t["error"] for t in tests if t["error"]}))[:300]
        path = search_spec(book)
        raise Stopped(f"lr-find read no learning-rate range from the curves ({reason}; see {where / lr_find.PLOT_FILE})",
                      f"set params.learning_rate in {path} (moved from fixed, where the spec fixes it), then: "
                      f"raysweep run {path}",
                      all_failed=all(math.isnan(t.fit_learning_rate) for t in outcome.tests))   # as lr-find's exit code
    return Step({"low": float(outcome.low), "high": float(outcome.high)},
                {"tests": json.loads(json.dumps(tests, default=float)), "curves": str(where / lr_find.CURVES_FILE),
                 "plot": str(where / lr_find.PLOT_FILE), "summary": str(where / lr_find.SUMMARY_FILE)}, where)


def _search(book: Playbook) -> Step:
    path = search_spec(book)
    entry = book.entry("search")
    started = entry.get("experiment_dir")
    if started and tune.Tuner.can_restore(experiment.home(Path(started))):
        try:
            experiment_dir = sweep.resume(started, address=book.address, quiet=book.quiet)
        except sweep.NothingToResume:   # every trial had ended before the kill
            experiment_dir = Path(started)
    else:   # not started, or killed before Tune saved anything: start it (again)
        experiment_dir = sweep.run(load(path), address=book.address, quiet=book.quiet,
                                   on_created=lambda made: _created(book, made))
    table = leaderboard.leaderboard(experiment_dir)
    ended = sweep.outcome(experiment_dir, table)
    if ended == "interrupted":
        raise Interrupted(str(experiment_dir))
    if ended == "all failed":
        groups = diagnose.failure_groups(store.load(experiment_dir).trials)
        raise Stopped(f"every trial of the search failed: {'; '.join(groups)}; tracebacks in each trial's error.txt and "
                      f"{experiment_dir / logs.LOG_FILE}", f"fix the cause, then: raysweep run {path}", all_failed=True)
    try:
        best = champion.select(experiment_dir)
    except champion.NoneMeets as exc:
        raise Stopped(f"no champion: {exc}", f"raysweep rank {experiment_dir}") from None
    statuses = ", ".join(f"{n} {s}" for s, n in table["status"].value_counts().items())
    return Step({"trial": best.trial, "metric": best.metric, "mode": best.mode, "value": float(best.value),
                 "rank": int(list(table["trial"]).index(best.trial)) + 1, "trials": len(table)},
                {"spec": str(path), "statuses": statuses, "top": _records(table.head(EVIDENCE_ROWS))}, experiment_dir)


def _created(book: Playbook, experiment_dir: Path) -> None:
    """The search's experiment exists: name it in the record (a kill from here on resumes it)
    and name the playbook in it."""
    record.link(experiment_dir, book.directory)
    book.entry("search")["experiment_dir"] = str(experiment_dir)
    record.write(book.directory, book.record)


def _report(book: Playbook) -> Step:
    return Step({"path": str(report.write(book.entry("search")["experiment_dir"]))}, {})


def _export(book: Playbook) -> Step:
    search = book.entry("search")
    to = book.directory / record.CHAMPION_DIR
    threshold = book.record.get("min_metric")
    card = book.exporter(Path(search["experiment_dir"]), to, threshold)
    top = card["champion"]
    return Step({"model_dir": str(to), "trial": top["trial"], "metric": top["metric"], "mode": top["mode"],
                 "value": float(top["value"]), "threshold": threshold, "passed": True},
                {"files": card["files"], "search_champion": search["decision"]["trial"]})


def _records(table: pd.DataFrame) -> list[dict]:
    """A table's rows as plain JSON values (numpy numbers and NaN made JSON's)."""
    return json.loads(table.to_json(orient="records"))


PHASE_STEPS = {"io": _io, "lr": _lr, "search": _search, "report": _report, "export": _export}
STARTS = {
    "io": lambda book: "timing the data settings of io_search.grid, one at a time",
    "lr": lambda book: "steps to fit and an LR range test on the io-search settings",
    "search": lambda book: (f"resuming {book.entry('search')['experiment_dir']}" if book.entry("search").get("experiment_dir")
                            else f"{sweep.planned_trials(validate(narrowed(book, 'search'), check_data=False))} trials "
                                 f"on {book.directory / record.SEARCH_SPEC_FILE}"),
    "report": lambda book: "the search's HTML report",
    "export": lambda book: f"the champion to {book.directory / record.CHAMPION_DIR}"
                           + (f" if it meets --min-metric {book.record['min_metric']:g}"
                              if book.record.get("min_metric") is not None else ""),
}
