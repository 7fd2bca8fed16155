"""`raysweep report`: one self-contained HTML file per experiment, to read or to mail.

Everything is inline (plots as base64 PNG, styles in the head), so the file opens anywhere
without the experiment directory or a network. Every text that came from a user or a trial
(parameter values, trial ids, errors, the spec) is HTML-escaped. A few lines of script check,
once the page has loaded, that every image decoded, and write the count into the page
(`data-images-loaded` on the body) for the headless-browser test to read.
"""

from __future__ import annotations

import base64
import html
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
import yaml

from raysweep import experiment
from raysweep.analysis import diagnose, forecast, leaderboard, pareto, plan_check, plots, store
from raysweep.experiment import playbook

REPORT_FILE = experiment.REPORT_FILE
TITLES = {"learning_curves": "Learning curves", "metric_vs_lr": "Metric against learning rate",
          "parallel_coordinates": "Parallel coordinates", "importance": "Parameter importance (fANOVA)",
          "classification": "Best trial: ROC and calibration", "regression": "Best trial: predictions and errors",
          "pareto_front": "Pareto front of the objectives"}
STYLE = """
* { box-sizing: border-box; }
body { font-family: system-ui, sans-serif; margin: 2rem auto; padding: 0 1.5rem; max-width: 1200px; color: #222; }
h1 { font-size: 1.6rem; } h2 { font-size: 1.2rem; margin-top: 2rem; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; font-size: 0.85rem; } td, th { padding: 3px 8px; border-bottom: 1px solid #eee; }
th { background: #f4f4f4; text-align: left; white-space: nowrap; } td { white-space: nowrap; }
.leaderboard tr:first-child td { font-weight: 600; }
.warning { background: #fff4e0; border-left: 4px solid #f0a000; padding: 6px 10px; margin: 6px 0; }
pre { background: #f7f7f7; padding: 10px; overflow-x: auto; font-size: 0.8rem; white-space: pre-wrap; }
figure { margin: 1rem 0; } img { max-width: 100%; border: 1px solid #eee; }
.meta td:first-child { color: #666; } .meta td { white-space: normal; } .scroll { overflow-x: auto; }
"""
CHECK_IMAGES = """
window.addEventListener("load", function () {
  var images = Array.prototype.slice.call(document.images);
  var ok = images.filter(function (img) { return img.complete && img.naturalWidth > 0; });
  document.body.setAttribute("data-images-loaded", ok.length + "/" + images.length);
});
"""


def _e(value) -> str:
    return html.escape(str(value), quote=True)


def _table(frame: pd.DataFrame, top: int | None = None, more: str = "") -> str:
    """The first `top` rows (all where None), and a line saying how many are left out and
    where to see them (`more`): a 10,000-trial sweep's report stays a page, not a book."""
    shown = frame.head(top) if top else frame
    table = shown.to_html(index=False, escape=True, na_rep="", border=0,
                          float_format=lambda x: f"{x:.4g}", classes="leaderboard")
    left = len(frame) - len(shown)
    note = f'<p class="more">{left:,} more not shown{_e(more)}.</p>' if left > 0 else ""
    return f'<div class="scroll">{table}</div>{note}'   # wide tables scroll, not the page


def _image(path: Path, title: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return (f'<figure><img alt="{_e(title)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{_e(title)}</figcaption></figure>")


def _provenance(experiment_dir: Path, spec) -> str:
    runs = experiment.read_provenance(experiment_dir)
    rows = [("experiment", experiment_dir.name), ("workload", spec.workload),
            ("search", f"{spec.search.algorithm}, seed {spec.search.seed}, {spec.search.num_samples} samples"),
            ("scheduler", spec.scheduler.type), ("objective", _objectives(spec)),
            ("data", spec.data.path)]
    for run in runs:
        rows.append((f"{run['event']} at {run['started']}", run["command"]))
    versions = runs[-1]["versions"] if runs else experiment.versions()
    rows.append(("versions", ", ".join(f"{k} {v}" for k, v in versions.items())))
    rows.append(("report written", datetime.now(timezone.utc).isoformat(timespec="seconds")))
    return "<table class=\"meta\">" + "".join(f"<tr><td>{_e(k)}</td><td>{_e(v)}</td></tr>" for k, v in rows) + "</table>"


def _objectives(spec) -> str:
    """What the sweep optimised, and what it required: `val_loss (min), val_ece (min); val_auc >= 0.5`."""
    text = ", ".join(f"{o.metric} ({o.mode})" for o in spec.objectives)
    return text + (f"; constraints: {', '.join(c.text for c in spec.constraints)}" if spec.constraints else "")


def _ranked_by(spec, table: pd.DataFrame) -> str:
    """How the leaderboard is ordered (analysis.leaderboard), in words."""
    if spec.multi_objective:
        on_front = int(((table[pareto.PARETO_RANK] == 1) & table[pareto.FEASIBLE]).sum())
        return (f"ranked by Pareto front over {_objectives(spec)} ({on_front} on the front, "
                f"{int(table[pareto.FEASIBLE].sum())} feasible; each objective at the epoch where {spec.metric} "
                "was best), then crowding distance")
    if spec.constraints:
        return (f"ranked on {spec.metric} ({spec.mode}), the {int(table[pareto.FEASIBLE].sum())} trials meeting "
                f"{', '.join(c.text for c in spec.constraints)} first")
    return f"ranked on {spec.metric} ({spec.mode})"


def _playbook(experiment_dir: Path) -> str:
    """The decisions of the `raysweep playbook` that ran this experiment, with their evidence
    (experiment/playbook.py); nothing for an experiment no playbook ran."""
    directory = playbook.linked(experiment_dir)
    if directory is None:
        return ""
    rows = pd.DataFrame(playbook.summary(playbook.read(directory)))
    return (f'<h2 id="playbook">Playbook</h2><p>{_e(f"This search is a phase of the playbook in {directory}")}; '
            f"each phase's decision and its evidence, as its {_e(playbook.RECORD_FILE)} records them:</p>" + _table(rows))


def _plan_against_actual(experiment_dir: Path, trials: pd.DataFrame) -> str:
    """The plan the sweep made as it started beside what happened (analysis/plan_check.py)."""
    table = plan_check.comparison_or_warning(experiment_dir, trials)
    if table is None:
        return ""
    source = (forecast.read(experiment_dir) or {}).get("timing_source") or "no timing (no wall time predicted)"
    shown = table.assign(**{c: [plan_check.display(label, v) for label, v in zip(table[""], table[c])]
                            for c in ("predicted", "actual")})
    return (f'<h2 id="plan">Plan against actual</h2><p>{_e("The plan made as the sweep started, timed by " + source)}'
            f"; the error is the actual against the predicted.</p>" + _table(shown))


def write(experiment_dir: str | Path, out: str | Path | None = None, top: int = 20) -> Path:
    experiment_dir = Path(experiment_dir)
    out = Path(out) if out else experiment_dir / REPORT_FILE
    spec = experiment.load_spec(experiment_dir)
    table = leaderboard.leaderboard(experiment_dir)
    results = store.load(experiment_dir)
    drawn = plots.all_plots(experiment_dir)

    parts = [f"<h1>raysweep report: {_e(spec.name)}</h1>"]
    if table.empty:
        parts.append("<p>No trial has reported yet.</p>")
    else:
        counts = ", ".join(f"{n} {s}" for s, n in table["status"].value_counts().items())
        trials = results.trials
        parts.append(f"<p>{len(table)} trials ({_e(counts)}), {_e(_ranked_by(spec, table))}. "
                     f"Compute: {_e(store.compute_used(trials))}, with the {_e(spec.scheduler.type)} scheduler.</p>")
        warnings = diagnose.edge_warnings(table, spec.params, spec.metric)
        failed = diagnose.failure_warning(trials)
        if diagnose.all_failed(table):
            failed = f"all {len(table)} trials failed: " + "; ".join(diagnose.failure_groups(trials))
        parts += [f'<div class="warning">{_e(w)}</div>' for w in warnings + ([failed] if failed else [])]
        every = f" (all of them: raysweep rank {experiment_dir} --top 0)"
        parts.append(f'<h2 id="leaderboard">Leaderboard</h2>{_table(table, top, every)}')
        configs = leaderboard.repeats_over(table, spec.tuned)
        if configs:
            parts.append("<h2>By configuration, over seeds</h2>"
                         + _table(leaderboard.group_by(table, configs, spec.metric, spec.mode), top))
        if spec.scientific:
            parts.append(f"<h2>Best trial per {_e(', '.join(spec.scientific))}</h2>"
                         + _table(leaderboard.best_per_value(table, spec.scientific), top))
    if "error" in results.trials:
        failed_rows = results.trials[results.trials["error"].fillna("") != ""]
        if len(failed_rows):
            every = f" (every trial with its error: {experiment_dir / store.TRIALS_FILE})"
            parts.append("<h2>Failed trials</h2>" + _table(failed_rows[["trial", "status", "error"]], top, every))
    decided = experiment.champion_decision(experiment_dir)
    if decided:
        parts.append("<h2>Champion</h2><p>" + _e(f"raysweep champion, {decided['decided']}: {decided['outcome']}: "
                                                   f"{decided['reason']}") + "</p>")
    parts.append(_playbook(experiment_dir))
    parts.append(_plan_against_actual(experiment_dir, results.trials))
    parts.append("<h2>Plots</h2>" + "".join(_image(path, TITLES.get(name, name)) for name, path in drawn.items()))
    parts.append("<h2>Spec</h2><pre>" + _e(yaml.safe_dump(spec.raw, sort_keys=False)) + "</pre>")
    parts.append("<h2>Provenance</h2>" + _provenance(experiment_dir, spec))
    page = ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>raysweep: {_e(spec.name)}</title><style>{STYLE}</style></head>\n<body>\n"
            + "\n".join(parts) + f"\n<script>{CHECK_IMAGES}</script>\n</body></html>\n")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")
    return out
