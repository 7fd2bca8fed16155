"""`raysweep champion`: the best model across experiments, scored once on test, and registered.

    raysweep champion 'results/families-*' [--since 14d] [--metric M --mode min|max] [--min-metric X]

Seed 002's deployment step, for a team that sweeps for weeks: look at the recent experiments,
pick the best trial on validation, score it once on the held-out test split, check the deployment
threshold there, and register it as the champion where it beats the one in production.

- **Comparable experiments only.** Validation scores rank trials only when they come from the
  same rows: the candidates are the experiments whose val fingerprint (recorded when each sweep
  started, datasets/fingerprint.py) is the newest experiment's; the others are listed and left
  out with the reason.
- **Once on test.** The chosen trial is scored on the test split through `raysweep evaluate`,
  which keeps its rule: an experiment scored on test already is refused a second look at another
  trial (without --again); the same trial's recorded score is reused, not taken again.
- **The threshold, then the registry.** Below `--min-metric` on test nothing is registered. A
  champion replaces the registered one only when it beats it on the same test split (the test
  fingerprints agree); otherwise the old one stays and the decision says by how much the
  challenger fell short. Each decision is written to the challenger's experiment
  (`champion_decision.json`).
"""

from __future__ import annotations

import glob
import json
import os
import re
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pandas as pd

from raysweep import experiment
from raysweep.analysis import champion, leaderboard, picks, store
from raysweep.analysis.champion import Champion
from raysweep.checks import did_you_mean
from raysweep.datasets import fingerprint, location
from raysweep.deploy import evaluate, export
from raysweep.deploy.model_versions import Registry, Version
from raysweep.deploy.registry import ENVIRONMENT, for_experiment, model_name, open_registry
from raysweep.errors import UserError
from raysweep.spec import SNAPSHOT_FILE, Spec

DECISION_FILE = experiment.CHAMPION_DECISION_FILE
SINCE_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
# What decide() can conclude; the CLI's exit code follows (below the threshold or not comparable: 1).
REGISTERED, REJECTED, ALREADY, BELOW_THRESHOLD, NOT_COMPARABLE = (
    "registered", "rejected", "already the champion", "below the threshold", "not comparable")


@dataclass
class Candidate:
    """One experiment: its best trial, or why it is left out."""

    experiment_dir: Path
    created: datetime
    best: Champion | None = None
    data: dict | None = None        # its data fingerprints, as its sweep recorded them
    left_out: str | None = None


@dataclass
class Decision:
    outcome: str
    reason: str
    challenger: Candidate
    name: str = ""
    registry: str = ""
    test_metric: str = ""
    test: float | None = None
    scores: dict = field(default_factory=dict)   # the challenger's test scores
    evaluation: dict = field(default_factory=dict)
    current: Version | None = None               # the champion it was weighed against
    version: Version | None = None               # what was registered
    margin: float | None = None                  # test score above the champion's (negative: short of it)

    def record(self) -> dict:
        c = self.challenger
        return {"decided": datetime.now(timezone.utc).isoformat(timespec="seconds"), "outcome": self.outcome,
                "reason": self.reason, "trial": c.best.trial if c.best else None, "registered_model": self.name,
                "registry": self.registry, "test_metric": self.test_metric, "test": self.test,
                "champion": None if self.current is None else {"version": self.current.version,
                                                               "trial": self.current.record.get("trial"),
                                                               "test": self.current.record.get("test")},
                "version": None if self.version is None else self.version.version, "margin": self.margin}


def parse_since(text: str) -> timedelta:
    """`14d`, `36h`, `2w`, `90m` as a time span."""
    found = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([mhdw])\s*", text or "")
    if not found:
        raise UserError(f"--since {text}: give a number and a unit, m, h, d or w (e.g. 14d for the last two weeks)")
    return timedelta(**{SINCE_UNITS[found[2]]: float(found[1])})


def _is_sweep(directory: Path) -> bool:
    """A sweep's experiment (run records it), not an lr-find's or an io-search's."""
    return any(r.get("event") == "run" for r in experiment.read_provenance(directory))


def gather(paths: list[str]) -> tuple[list[Path], list[Candidate]]:
    """The experiments named by directories, globs, URIs or folders of experiments (e.g.
    `results`); returns them and, as left out, named ones that are not sweeps."""
    found: dict[Path, None] = {}
    left_out = []
    for given in paths:
        if location.is_uri(given):
            found[experiment.local_dir(given)] = None
            continue
        matches = sorted(glob.glob(given)) if glob.has_magic(given) else [given]
        if not matches:
            raise UserError(f"{given}: matches no experiment directory")
        for match in map(Path, matches):
            if (match / SNAPSHOT_FILE).is_file():
                if _is_sweep(match):
                    found[match.resolve()] = None
                else:
                    left_out.append(Candidate(match, experiment.created(match), left_out="not a sweep (lr-find or "
                                              "io-search write no trials to choose from)"))
            elif match.is_dir():   # a folder of experiments: the sweeps in it
                for child in sorted(match.iterdir()):
                    if (child / SNAPSHOT_FILE).is_file() and _is_sweep(child):
                        found[child.resolve()] = None
            elif not glob.has_magic(given):
                raise UserError(f"{given}: not an experiment directory, a folder of them, a glob or a URI")
    if not found and not left_out:
        raise UserError(f"{' '.join(paths)}: holds no sweep's experiment; give experiment directories (raysweep run "
                        "prints where it wrote one), a folder of them such as results, or a glob")
    return list(found), left_out


@dataclass
class Candidates:
    """What `candidates` found: the comparable experiments best first, those left out, the
    metric and mode they are compared on, and the newest experiment's spec (which says where
    the champion is registered, and under which name)."""

    comparable: list[Candidate]
    left_out: list[Candidate]
    metric: str
    mode: str
    newest: Spec | None


def candidates(dirs: list[Path], *, metric: str | None, mode: str | None,
               since: timedelta | None = None) -> Candidates:
    """The experiments to choose from, compared on `metric` (default: the newest experiment's;
    its direction, where only the metric is given, is the one its workload declares) over the
    val data of the newest experiment.

    Raises:
        UserError: a metric the newest experiment's trials do not report, or a mode against it.
    """
    found = sorted((Candidate(d, experiment.created(d)) for d in dirs), key=lambda c: c.created, reverse=True)
    newest = None
    for c in found:   # the newest experiment whose spec still loads (its workload file may be gone)
        try:
            newest = experiment.load_spec(c.experiment_dir)
            break
        except UserError as exc:
            c.left_out = "its spec does not load: " + "; ".join(exc.lines)
    if newest is None:
        return Candidates([], found, metric or "", mode or "", None)
    metric, mode = _objective(newest, found[0].experiment_dir, metric, mode)
    now = datetime.now(timezone.utc)
    reference = None
    for c in found:
        if c.left_out is not None:
            continue
        c.data = experiment.data_fingerprint(c.experiment_dir)
        if since is not None and c.created < now - since:
            c.left_out = f"older than {_span(since)} (run {c.created:%Y-%m-%d %H:%M})"
        elif c.data is None:
            c.left_out = _why_no_fingerprint(c.experiment_dir)
        else:
            try:
                c.best = champion.select(c.experiment_dir, metric, mode)
            except UserError as exc:
                c.left_out = "; ".join(exc.lines)
                continue
            reference = reference or c.data
            if c.data["val"] != reference["val"]:
                c.left_out = (f"validated on other data: {c.data['path']} (val {fingerprint.short(c.data['val'])}), "
                              f"not {reference['path']} (val {fingerprint.short(reference['val'])}) as the newest is")
                c.best = None
    comparable = [c for c in found if c.left_out is None]
    comparable.sort(key=lambda c: c.best.value, reverse=mode == "max")
    return Candidates(comparable, [c for c in found if c.left_out is not None], metric, mode, newest)


def _objective(newest: Spec, newest_dir: Path, metric: str | None, mode: str | None) -> tuple[str, str]:
    """The metric and mode to compare on: as given, else the newest spec's; a metric given alone
    takes the direction its workload declares (val_auc: max), and one no trial reports is refused."""
    if metric is None:
        return newest.metric, mode or newest.mode
    known = leaderboard.known_metrics(newest, store.load(newest_dir).trials)
    if metric not in known:
        raise UserError(f"--metric {metric}: not a metric of {newest_dir.name}.{did_you_mean(metric, known)} "
                        f"Known: {', '.join(known)}.")
    declared = picks.directions(newest).get(metric)
    if mode is not None and declared is not None and mode != declared:
        raise UserError(f"--mode {mode}: {metric} is better when {'lower' if declared == 'min' else 'higher'}; "
                        f"give --mode {declared} (or leave it out)")
    if mode is None and declared is None:
        raise UserError(f"--metric {metric}: its direction is not known; give --mode min or --mode max")
    return metric, mode or declared


def _why_no_fingerprint(experiment_dir: Path) -> str:
    if not experiment.load_spec(experiment_dir).data.read:
        return "its loop reads data.path itself, and raysweep cannot fingerprint data it does not read"
    return "records no data fingerprint (run before raysweep recorded one); run its spec again"


def registry_of(newest: Spec, registry: str | None, name: str | None) -> tuple[str, str]:
    """(where, name) the champion is registered: --registry, else $RAYSWEEP_REGISTRY, else the
    newest experiment's (its MLflow store, or a folder beside its results); --name, else one per
    the newest experiment's workload and dataset. Decided from the newest experiment, so which
    experiment wins on val does not change where the champion is kept."""
    where = registry or os.environ.get(ENVIRONMENT) or for_experiment(newest)
    return where, name or model_name(newest.workload, location.absolute(newest.data.path))


def _span(since: timedelta) -> str:
    days = since.total_seconds() / 86400
    return f"{days:g}d" if days >= 1 else f"{since.total_seconds() / 3600:g}h"


def format_candidates(comparable: list[Candidate], metric: str) -> str:
    rows = [{"": i + 1, "experiment": c.experiment_dir.name, "run": f"{c.created:%Y-%m-%d %H:%M}",
             "trial": c.best.trial, **({"family": c.best.config["family"]} if "family" in c.best.config else {}),
             metric: f"{c.best.value:.4g}", "val data": fingerprint.short(c.data["val"])}
            for i, c in enumerate(comparable)]
    return pd.DataFrame(rows).fillna("").to_string(index=False)


def test_metric_of(metric: str, scores: dict) -> str:
    """The name a validation metric has among the test split's scores (evaluate's `test_scores`):
    no `val_` prefix, and for a binary F-beta the score at the threshold chosen on val."""
    name = metric.removeprefix("val_")
    if name == "fbeta" and "fbeta_at_threshold" in scores:
        return "fbeta_at_threshold"
    if name not in scores:
        raise UserError(f"the test split's scores hold no {name} to judge {metric} by (they hold "
                        f"{', '.join(scores)}); choose with --metric one of val_{', val_'.join(scores)}")
    return name


def _beats(value: float, other: float, mode: str) -> bool:
    return value > other if mode == "max" else value < other


def _test_scores(c: Candidate, metric: str, mode: str, again: bool) -> dict:
    """The champion trial's test record: the one `evaluate` made of this trial, else a new one."""
    path = c.experiment_dir / evaluate.EVALUATION_FILE
    if path.is_file() and not again:
        record = json.loads(path.read_text())
        if record.get("champion", {}).get("trial") == c.best.trial:
            return record
    record = evaluate.evaluate(c.experiment_dir, again=again, metric=metric, mode=mode)
    experiment.push(c.experiment_dir, [evaluate.EVALUATION_FILE])
    return record


def decide(c: Candidate, *, metric: str, mode: str, name: str, registry: str, min_metric: float | None = None,
           again: bool = False, export_format: str | None = None) -> Decision:
    """Score the chosen candidate once on test, check the threshold, weigh it against the
    champion registered as `name` at `registry` and register it where it wins. The registry is
    opened first: one out of reach is said before the test split is looked at."""
    s = experiment.load_spec(c.experiment_dir)
    kept: Registry = open_registry(registry)
    evaluation = _test_scores(c, metric, mode, again)
    scores = evaluation["champion"]["test"]
    test_metric = test_metric_of(metric, scores)
    value = float(scores[test_metric])
    decision = Decision("", "", c, name, registry, test_metric, value, scores, evaluation)
    if min_metric is not None and not (value == min_metric or _beats(value, min_metric, mode)):
        bound = "at least" if mode == "max" else "at most"
        decision.outcome, decision.reason = BELOW_THRESHOLD, (
            f"trial {c.best.trial} has {test_metric} {value:.4g} on test; the threshold asks for {bound} "
            f"{min_metric:g}. Nothing registered.")
        return _written(decision)
    current = decision.current = kept.current(name)
    home = experiment.home(c.experiment_dir)
    if current is not None:
        was = current.record
        if (was.get("experiment"), was.get("trial")) == (home, c.best.trial):
            decision.outcome, decision.reason = ALREADY, (
                f"trial {c.best.trial} is {name}'s champion already (version {current.version})")
            return _written(decision)
        if was.get("data", {}).get("test") != c.data["test"] or test_metric not in was.get("test_scores", {}):
            decision.outcome, decision.reason = NOT_COMPARABLE, (
                f"{name} version {current.version} was scored on another test split or metric (test "
                f"{fingerprint.short(was.get('data', {}).get('test'))}, {', '.join(was.get('test_scores', {}))}), the "
                f"challenger on test {fingerprint.short(c.data['test'])} by {test_metric}: they cannot be compared. "
                "Register it under a name of its own (--name), or score both on one test split")
            return _written(decision)
        before = float(was["test_scores"][test_metric])
        decision.margin = value - before if mode == "max" else before - value
        if not _beats(value, before, mode):
            short = "equals it" if decision.margin == 0 else f"falls short by {abs(decision.margin):.4g}"
            decision.outcome, decision.reason = REJECTED, (
                f"the challenger, trial {c.best.trial}, has {test_metric} {value:.4g} on test and {short}: "
                f"version {current.version} (trial {was.get('trial')}, {before:.4g}) stays the champion")
            return _written(decision)
    with tempfile.TemporaryDirectory(prefix="raysweep-champion-") as scratch:
        model_dir = export.export(c.experiment_dir, Path(scratch) / "model", metric=metric, mode=mode,
                                  trial=c.best.trial, export_format=export_format)
        card = json.loads((model_dir / export.CARD_FILE).read_text())
        record = {"experiment": home, "trial": c.best.trial, "workload": s.workload,
                  "family": c.best.config.get("family"), "metric": metric, "mode": mode, "validation": c.best.value,
                  "test_metric": test_metric, "test": value, "test_scores": scores,
                  "scored": evaluation["scored"], "rows": evaluation["rows"],
                  "data": {"path": c.data["path"], "val": c.data["val"], "test": c.data["test"]},
                  "registered": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                  "replaced": None if current is None else current.version, "margin": decision.margin,
                  "card_metrics": {k: v for k, v in card.get("metrics", {}).items() if isinstance(v, (int, float))}}
        decision.version = kept.register(name, record, model_dir)
    above = ("" if current is None else
             f", {decision.margin:.4g} better than version {current.version}'s {current.record['test']:.4g}")
    decision.outcome, decision.reason = REGISTERED, (
        f"{name} version {decision.version.version} is the champion: trial {c.best.trial}, {test_metric} "
        f"{value:.4g} on test{above}")
    return _written(decision)


def _written(decision: Decision) -> Decision:
    """Record the decision in the challenger's experiment (pushed where it lives at a URI)."""
    directory = decision.challenger.experiment_dir
    (directory / DECISION_FILE).write_text(json.dumps(decision.record(), indent=2, default=str) + "\n")
    experiment.push(directory, [DECISION_FILE])
    return decision
