"""A playbook's record: `playbook.json`, each phase's decision with its evidence.

    storage_path/<name>-playbook-<timestamp>/
        raysweep_spec.yaml    the spec as given (overrides applied, paths absolute)
        playbook.json         per phase: status, its own experiment directory, decision, evidence
        search_spec.yaml      the spec the search runs on: narrowed by io-search and lr-find
        champion/             the exported champion

`raysweep playbook` (phases/playbook.py) writes the record whenever a phase starts, ends or
stops, atomically (a temporary file renamed over it), so a kill loses at most the phase that was
running, and `raysweep playbook --resume DIR` reads it back. Each phase's own experiment
directory (io-search's, lr-find's, the search's) stays where the phase put it, beside this one,
and the record names it; the search's experiment names the playbook back (`playbook_link.json`),
so its report shows the decisions (analysis/report.py) and `--resume` takes either directory.

A phase's status is `pending`, `running`, `done`, `skipped` (the spec does not configure it) or
`stopped` (it found nothing: `reason` says why, `command` how to go on by hand).
"""

from __future__ import annotations

import json
import os
import tempfile
from datetime import datetime, timezone
from pathlib import Path

from raysweep.errors import UserError

RECORD_FILE = "playbook.json"
LINK_FILE = "playbook_link.json"       # in the search's experiment: which playbook ran it
SEARCH_SPEC_FILE = "search_spec.yaml"
CHAMPION_DIR = "champion"
PHASES = ("io", "lr", "search", "report", "export")   # in the order they run (`--stop-after`)
LABELS = {"io": "io-search", "lr": "lr-find", "search": "search", "report": "report", "export": "export"}
PENDING, RUNNING, DONE, SKIPPED, STOPPED = "pending", "running", "done", "skipped", "stopped"
FINISHED = (DONE, SKIPPED)   # not run again by --resume


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def new(directory: Path, *, name: str, spec_source: str, min_metric: float | None) -> dict:
    """A record with every phase pending, written into `directory`; returns it."""
    record = {"playbook": name, "spec": spec_source, "created": now(), "min_metric": min_metric,
              "phases": {phase: {"status": PENDING} for phase in PHASES}}
    write(directory, record)
    return record


def write(directory: Path, record: dict) -> None:
    """Replace `playbook.json` whole: a reader (or a kill) never sees half of it."""
    directory = Path(directory)
    handle, temporary = tempfile.mkstemp(prefix=f".{RECORD_FILE}.", dir=directory)
    try:
        with os.fdopen(handle, "w") as out:
            out.write(json.dumps(record, indent=2, default=str) + "\n")
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, directory / RECORD_FILE)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def read(directory: Path) -> dict:
    """The record in `directory`.

    Raises:
        UserError: `directory` holds no playbook record, or one that cannot be read.
    """
    path = Path(directory) / RECORD_FILE
    if not path.is_file():
        raise UserError(f"{directory}: not a playbook ({RECORD_FILE} is missing); start one with "
                        "raysweep playbook SPEC")
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise UserError(f"{path}: cannot be read as a playbook record ({type(exc).__name__}: {exc})") from None
    if not isinstance(record, dict) or set(record.get("phases") or {}) != set(PHASES):
        raise UserError(f"{path}: not a playbook record (it lacks the phases {', '.join(PHASES)})")
    return record


def set_phase(directory: Path, record: dict, phase: str, status: str, **fields) -> None:
    """Give `phase` a new status (and the fields given, None removing one), and write the record."""
    entry = record["phases"][phase]
    entry["status"] = status
    entry[{RUNNING: "started"}.get(status, "ended")] = now()
    for key, value in fields.items():
        if value is None:
            entry.pop(key, None)
        else:
            entry[key] = value
    write(directory, record)


def link(experiment_dir: Path, playbook_dir: Path) -> None:
    """Name the playbook in the experiment it ran (its search)."""
    (Path(experiment_dir) / LINK_FILE).write_text(json.dumps({"playbook": str(Path(playbook_dir).resolve())}) + "\n")


def linked(experiment_dir: Path) -> Path | None:
    """The playbook directory that ran this experiment, where one did and is still there (also
    where both were moved together: it is looked for beside the experiment by name)."""
    path = Path(experiment_dir) / LINK_FILE
    if not path.is_file():
        return None
    try:
        named = Path(json.loads(path.read_text())["playbook"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    for candidate in (named, Path(experiment_dir).resolve().parent / named.name):
        if (candidate / RECORD_FILE).is_file():
            return candidate
    return None


def find(path: str | Path) -> Path:
    """The playbook directory `path` names: itself, or the one its search experiment links to.

    Raises:
        UserError: neither holds a playbook record.
    """
    path = Path(path)
    if not path.is_dir():
        raise UserError(f"{path}: no such directory; --resume takes the playbook's directory, which "
                        "`raysweep playbook SPEC` printed first")
    if (path / RECORD_FILE).is_file():
        return path.resolve()
    found = linked(path)
    if found is None:
        read(path)   # raises the error that says what is missing
    return found


def summary(record: dict) -> list[dict]:
    """Each phase in words, for the console and the report: phase, status, decision, evidence, and
    the files that hold the evidence."""
    rows = []
    for phase in PHASES:
        entry = record["phases"][phase]
        decision, evidence, files = _words(phase, entry)
        rows.append({"phase": LABELS[phase], "status": entry["status"], "decision": decision, "evidence": evidence,
                     "files": files})
    return rows


def line(row: dict) -> str:
    """A summary row's decision and evidence as one line."""
    return "; ".join(part for part in (row["decision"], row["evidence"]) if part)


def _words(phase: str, entry: dict) -> tuple[str, str, str]:
    status = entry["status"]
    if status == STOPPED:
        return entry.get("reason", ""), f"go on by hand: {entry['command']}" if entry.get("command") else "", ""
    if status == SKIPPED:
        return entry.get("reason", "not configured"), "", ""
    if status != DONE:
        return "", "", entry.get("experiment_dir", "")
    decision, evidence = entry.get("decision", {}), entry.get("evidence", {})
    return {"io": _io_words, "lr": _lr_words, "search": _search_words, "report": _report_words,
            "export": _export_words}[phase](decision, evidence, entry)


def _io_words(decision: dict, evidence: dict, entry: dict) -> tuple[str, str, str]:
    settings = ", ".join(f"{k}={v}" for k, v in decision["settings"].items())
    others = [f"{row['samples_per_s']:,.0f}" for row in evidence.get("top", [])[1:] if row.get("samples_per_s")]
    return (f"{settings}: {decision['samples_per_s']:,.0f} samples/s",
            f"the fastest of {evidence.get('settings', '?')} settings"
            + (f" (next: {', '.join(others)} samples/s)" if others else ""), evidence.get("table", ""))


def _lr_words(decision: dict, evidence: dict, entry: dict) -> tuple[str, str, str]:
    tests = evidence.get("tests", [])
    each = "; ".join(f"{_over(t['over'])}steepest descent at {t['steepest_lr']:.2g}, minimum loss at "
                     f"{t['min_loss_lr']:.2g}" for t in tests if t.get("steepest_lr"))
    return (f"learning_rate {decision['low']:.2g} .. {decision['high']:.2g}",
            f"{len(tests)} range test{'' if len(tests) == 1 else 's'}: {each}",
            f"{evidence.get('plot', '')}, {evidence.get('curves', '')}")


def _over(over: dict) -> str:
    return "".join(f"{k}={v}: " for k, v in over.items())


def _search_words(decision: dict, evidence: dict, entry: dict) -> tuple[str, str, str]:
    return (f"champion: trial {decision['trial']}, {decision['metric']} {decision['value']:.4g}",
            f"rank {decision['rank']} of {decision['trials']} trials ({evidence.get('statuses', '')})",
            f"{entry.get('experiment_dir', '')}, {evidence.get('spec', '')}")


def _report_words(decision: dict, evidence: dict, entry: dict) -> tuple[str, str, str]:
    return decision.get("path", ""), "", ""


def _export_words(decision: dict, evidence: dict, entry: dict) -> tuple[str, str, str]:
    threshold = decision.get("threshold")
    judged = (f"meets --min-metric ({'at least' if decision.get('mode') == 'max' else 'at most'} {threshold:g})"
              if threshold is not None else "(no --min-metric given)")
    return (f"trial {decision['trial']} to {decision['model_dir']}",
            f"{decision['metric']} {decision['value']:.4g} {judged}", ", ".join(evidence.get("files", [])))
