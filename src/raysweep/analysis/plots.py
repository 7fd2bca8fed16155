"""The plots people look at after a sweep, as PNG files (matplotlib, no display needed).

Each function takes the results store's tables (and the spec) and writes one figure:

- `learning_curves`: the objective per epoch of the top trials, the others faint, with an x
  where ASHA stopped a trial and a ring where early stopping ended one;
- `metric_vs_lr`: each trial's best objective against its learning rate, on a log axis;
- `parallel_coordinates`: one line per trial across the tuned parameters (log axes where the
  range is log), coloured by the objective;
- `importance`: fANOVA importances through `optuna.importance`, from the trials table alone;
- `pareto_front` (several objectives): two, a scatter of every trial with the front as a step
  line and the infeasible trials in grey; three or more, parallel coordinates of the front's
  trials over the objectives (analysis.pareto: each at the epoch where the first was best);
- `classification` (binary and multilabel tasks: Glideator, such tables): ROC curves per
  target and a reliability diagram of the best trial's validation predictions;
- `regression` (the trajectory LSTM, regression tables): predicted against true per target and
  the percentiles of the absolute error.

The task comes from the workload (`TASK`, or the dataset's meta.json where the workload
leaves it to the data), so a new workload gets the plots of its task without a change here.

`all_plots` draws every one that applies and returns the paths; a plot that does not apply (no
learning rate tuned, fewer than three finished trials for importance) is skipped, not faked.
Figures are built with matplotlib's object API, not pyplot: no backend is chosen or changed, so
importing this module leaves a notebook's inline plots alone.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import matplotlib
import numpy as np
import optuna
import optuna.distributions as d
import pandas as pd
from matplotlib.cm import ScalarMappable
from matplotlib.collections import LineCollection
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from raysweep import experiment
from raysweep.analysis import champion, pareto, store
from raysweep.search import space
from raysweep.search.objectives import Objective
from raysweep.training import metrics
from raysweep.workloads import task_of

PLOTS_DIR = experiment.PLOTS_DIR
log = logging.getLogger("raysweep")


def _ranked(trials: pd.DataFrame, metric: str, mode: str) -> pd.DataFrame:
    column = f"best_{metric}"
    if column not in trials:
        return trials.iloc[0:0]
    return trials.dropna(subset=[column]).sort_values(column, ascending=(mode == "min"), kind="stable")


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def _figure(width: float, height: float, ncols: int = 1):
    fig = Figure(figsize=(width, height))
    axes = fig.subplots(1, ncols)
    return fig, axes


def learning_curves(results: store.Results, metric: str, mode: str, out: Path, top: int = 8) -> Path | None:
    ranked = _ranked(results.trials, metric, mode)
    if ranked.empty or metric not in results.curves:
        return None
    fig, ax = _figure(8, 4.8)
    best_ids = list(ranked["trial"].head(top))
    status = results.trials.set_index("trial")["status"]
    in_order = results.curves.sort_values("step", kind="stable")
    curves = dict(tuple(in_order.groupby("trial", sort=False)))
    # The others as one collection, and the end markers as one scatter each: one artist per
    # trial took minutes to draw at 10,000 trials.
    others = [np.column_stack([c["epoch"].to_numpy(float), c[metric].to_numpy(float)])
              for t, c in curves.items() if t not in best_ids]
    ax.add_collection(LineCollection(others, colors="0.75", linewidths=0.8, zorder=1))
    for trial in [t for t in best_ids if t in curves]:   # the top ones on top, legend in rank order
        curve = curves[trial]
        ax.plot(curve["epoch"], curve[metric], marker=".", lw=1.6, label=f"#{best_ids.index(trial) + 1} {trial}", zorder=3)
    ends = pd.DataFrame([(t, c["epoch"].iloc[-1], c[metric].iloc[-1], str(status.get(t, "")))
                         for t, c in curves.items() if len(c)], columns=["trial", "epoch", "value", "status"])
    stopped = ends[ends["status"].str.startswith("stopped by ")]
    patience = ends[ends["status"] == "early stopped"]
    ax.scatter(stopped["epoch"], stopped["value"], marker="x", color="crimson", s=40, zorder=4)
    ax.scatter(patience["epoch"], patience["value"], marker="o", facecolors="none", edgecolors="black", s=50, zorder=4)
    ax.autoscale_view()
    ax.scatter([], [], marker="x", color="crimson", label="stopped by the scheduler")
    ax.scatter([], [], marker="o", facecolors="none", edgecolors="black", label="early stopped")
    ax.set_xlabel("epoch")
    ax.set_ylabel(metric)
    ax.set_title(f"Learning curves: the top {len(best_ids)} trials by {metric} (others in grey)")
    ax.legend(fontsize=7, loc="best", ncol=2)
    ax.grid(alpha=0.3)
    return _save(fig, out)


def metric_vs_lr(results: store.Results, metric: str, mode: str, out: Path) -> Path | None:
    trials = results.trials.dropna(subset=[f"best_{metric}"]) if f"best_{metric}" in results.trials else None
    if trials is None or "learning_rate" not in trials or trials["learning_rate"].nunique() < 2:
        return None
    fig, ax = _figure(7, 4.2)
    for status, group in trials.groupby("status"):
        ax.scatter(group["learning_rate"], group[f"best_{metric}"], label=status, alpha=0.8)
    best = _ranked(trials, metric, mode).iloc[0]
    ax.scatter([best["learning_rate"]], [best[f"best_{metric}"]], marker="*", s=220, color="gold",
               edgecolors="black", zorder=5, label="best")
    ax.set_xscale("log")
    ax.set_xlabel("learning rate (log)")
    ax.set_ylabel(f"best {metric}")
    ax.set_title(f"Best {metric} against learning rate")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, which="both")
    return _save(fig, out)


def _axis(param: space.Param, values: pd.Series) -> tuple[np.ndarray, list, list[str]]:
    """Values mapped to [0, 1] and the axis ticks (positions, labels)."""
    if param.is_choice:
        labels = [json.dumps(v) if isinstance(v, (list, dict)) else str(v) for v in param.values]
        index = {label: i for i, label in enumerate(labels)}
        text = values.map(lambda v: json.dumps(store.value(v)) if isinstance(store.value(v), (list, dict)) else str(v))
        n = max(len(labels) - 1, 1)
        return text.map(lambda t: index.get(t, np.nan) / n).to_numpy(float), [i / n for i in range(len(labels))], labels
    low, high = float(param.low), float(param.high)
    v = values.astype(float).to_numpy()
    if param.type == "loguniform":
        scaled = (np.log(v) - math.log(low)) / (math.log(high) - math.log(low))
    else:
        scaled = (v - low) / (high - low) if high > low else np.zeros_like(v)
    return scaled, [0.0, 1.0], [f"{low:.3g}", f"{high:.3g}"]


def parallel_coordinates(results: store.Results, params: tuple[space.Param, ...], metric: str, mode: str,
                         out: Path) -> Path | None:
    ranked = _ranked(results.trials, metric, mode)
    shown = [p for p in space.all_params(params) if p.name in ranked]
    if ranked.empty or not shown:
        return None
    fig, ax = _figure(max(6, 1.6 * len(shown) + 2), 4.8)
    values = ranked[f"best_{metric}"].to_numpy(float)
    norm = Normalize(values.min(), values.max() if values.max() > values.min() else values.min() + 1)
    cmap = matplotlib.colormaps["viridis_r" if mode == "min" else "viridis"]
    columns = [_axis(p, ranked[p.name]) for p in shown]
    ys = np.stack([c[0] for c in columns], axis=1)
    x = np.arange(len(shown), dtype=float)
    lines = [np.column_stack([x, row]) for row in ys[::-1]]   # best drawn last, on top
    ax.add_collection(LineCollection(lines, colors=cmap(norm(values[::-1])), alpha=0.85, linewidths=1.4))
    ax.set_ylim(-0.05, 1.05)
    for i, (_, ticks, labels) in enumerate(columns):
        ax.axvline(i, color="0.3", lw=0.8)
        for tick, label in zip(ticks, labels):
            ax.annotate(label, (i, tick), xytext=(4, 0), textcoords="offset points", fontsize=7, va="center")
    ax.set_xticks(range(len(shown)))
    ax.set_xticklabels([p.name + (" (log)" if p.type == "loguniform" else "") for p in shown], rotation=15, fontsize=8)
    ax.set_yticks([])
    ax.set_xlim(-0.2, len(shown) - 0.5)
    fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), ax=ax, label=f"best {metric}")
    ax.set_title("Parallel coordinates of the tuned parameters")
    return _save(fig, out)


def _distribution(param: space.Param):
    if param.is_choice:
        return d.CategoricalDistribution([json.dumps(v) if isinstance(v, (list, dict)) else v for v in param.values])
    if param.type == "randint":
        return d.IntDistribution(int(param.low), int(param.high))
    return d.FloatDistribution(float(param.low), float(param.high), log=param.type == "loguniform")


IMPORTANCE_TRIALS = 1000


def importances(results: store.Results, params: tuple[space.Param, ...], metric: str, mode: str,
                seed: int = 0) -> dict[str, float]:
    """fANOVA importance of each tuned parameter for the best metric of the finished trials.

    fANOVA's forest grows with the trials it is fitted on (9 s for 1,000, minutes for 10,000):
    beyond `IMPORTANCE_TRIALS` it is fitted on a seeded random sample of that many, an unbiased
    estimate of the same variance shares."""
    ranked = _ranked(results.trials, metric, mode)
    if len(ranked) > IMPORTANCE_TRIALS:
        ranked = ranked.sample(n=IMPORTANCE_TRIALS, random_state=seed)
    # fANOVA needs every parameter in every trial: branch-only sub-parameters sit out.
    tuned = [p for p in space.all_params(params) if p.name in ranked and ranked[p.name].notna().all()]
    if len(ranked) < 3 or not tuned:
        return {}
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="minimize" if mode == "min" else "maximize")
    distributions = {p.name: _distribution(p) for p in tuned}
    for _, row in ranked.iterrows():
        values = {}
        for p in tuned:
            v = store.value(row[p.name])
            values[p.name] = json.dumps(v) if isinstance(v, (list, dict)) else (int(v) if p.type == "randint" else v)
        study.add_trial(optuna.trial.create_trial(params=values, distributions=distributions,
                                                  value=float(row[f"best_{metric}"])))
    evaluator = optuna.importance.FanovaImportanceEvaluator(seed=seed)
    return dict(optuna.importance.get_param_importances(study, evaluator=evaluator))


def importance(results: store.Results, params, metric: str, mode: str, out: Path) -> Path | None:
    scores = importances(results, params, metric, mode)
    if not scores:
        return None
    fig, ax = _figure(6.5, 0.5 * len(scores) + 1.5)
    names = list(scores)[::-1]
    ax.barh(names, [scores[n] for n in names], color="steelblue")
    ax.set_xlabel(f"fANOVA importance for {metric}")
    n = len(_ranked(results.trials, metric, mode))
    sampled = f"a random {IMPORTANCE_TRIALS:,} of {n:,} trials" if n > IMPORTANCE_TRIALS else f"{n} trials"
    ax.set_title(f"Parameter importance ({sampled})")
    return _save(fig, out)


def pareto_front(trials: pd.DataFrame, objectives: tuple[Objective, ...], out: Path) -> Path | None:
    """The Pareto front of an annotated trials table (analysis.pareto): a scatter for two
    objectives, parallel coordinates of the front for more; None with one objective or no front."""
    if len(objectives) < 2 or pareto.PARETO_RANK not in trials:
        return None
    columns = [pareto.at_best_column(o.metric) for o in objectives]
    placed = trials.dropna(subset=columns)
    on_front = pareto.front(placed)
    if on_front.empty:
        return None
    if len(objectives) == 2:
        return _front_scatter(placed, on_front, objectives, out)
    return _front_coordinates(on_front, objectives, out)


def _front_scatter(placed: pd.DataFrame, on_front: pd.DataFrame, objectives, out: Path) -> Path:
    """Every trial at its point; the front joined by the steps that bound what it dominates."""
    (x_goal, y_goal), (x, y) = objectives, [pareto.at_best_column(o.metric) for o in objectives]
    fig, ax = _figure(7, 5)
    feasible = placed[pareto.FEASIBLE].astype(bool)
    ax.scatter(placed.loc[~feasible, x], placed.loc[~feasible, y], color="0.75", s=22, label="infeasible")
    rest = placed[feasible & ~placed["trial"].isin(on_front["trial"])]
    ax.scatter(rest[x], rest[y], color="steelblue", alpha=0.7, s=22, label="feasible, dominated")
    steps = on_front.sort_values(x, kind="stable")
    # from each front point, the boundary runs along x first where x is minimised, along y first otherwise
    ax.step(steps[x], steps[y], where="post" if x_goal.mode == "min" else "pre", color="crimson", lw=1.4)
    ax.scatter(steps[x], steps[y], color="crimson", s=40, zorder=4, label=f"Pareto front ({len(steps)})")
    ax.set_xlabel(f"{x_goal.metric} ({x_goal.mode})")
    ax.set_ylabel(f"{y_goal.metric} ({y_goal.mode})")
    ax.set_title(f"Pareto front: each trial at the epoch where {x_goal.metric} was best")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return _save(fig, out)


def _front_coordinates(on_front: pd.DataFrame, objectives, out: Path) -> Path:
    """One line per front trial across the objectives, each axis from its worst (bottom) to its
    best (top) value on the front, coloured by the first objective."""
    fig, ax = _figure(max(6, 1.8 * len(objectives) + 2), 4.8)
    ys, ticks = [], []
    for o in objectives:
        values = on_front[pareto.at_best_column(o.metric)].to_numpy(float)
        low, high = values.min(), values.max()
        scaled = (values - low) / (high - low) if high > low else np.full_like(values, 0.5)
        ys.append(1 - scaled if o.mode == "min" else scaled)
        ticks.append((f"{high:.4g}", f"{low:.4g}") if o.mode == "min" else (f"{low:.4g}", f"{high:.4g}"))
    first = on_front[pareto.at_best_column(objectives[0].metric)].to_numpy(float)
    norm = Normalize(first.min(), first.max() if first.max() > first.min() else first.min() + 1)
    cmap = matplotlib.colormaps["viridis_r" if objectives[0].mode == "min" else "viridis"]
    x = np.arange(len(objectives), dtype=float)
    lines = [np.column_stack([x, row]) for row in np.stack(ys, axis=1)]
    ax.add_collection(LineCollection(lines, colors=cmap(norm(first)), alpha=0.9, linewidths=1.6))
    for i, (bottom, top) in enumerate(ticks):
        ax.axvline(i, color="0.3", lw=0.8)
        ax.annotate(bottom, (i, 0.0), xytext=(4, 0), textcoords="offset points", fontsize=7, va="center")
        ax.annotate(top, (i, 1.0), xytext=(4, 0), textcoords="offset points", fontsize=7, va="center")
    ax.set_xticks(range(len(objectives)))
    ax.set_xticklabels([f"{o.metric} ({o.mode})" for o in objectives], rotation=15, fontsize=8)
    ax.set_yticks([])
    ax.set_ylim(-0.05, 1.05)
    ax.set_xlim(-0.2, len(objectives) - 0.5)
    fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), ax=ax, label=objectives[0].metric)
    ax.set_title(f"Pareto front: {len(on_front)} trials, better up on every axis")
    return _save(fig, out)


def _roc(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(-scores, kind="stable")
    hits = labels[order].astype(float)
    tpr = np.concatenate([[0.0], np.cumsum(hits) / max(hits.sum(), 1)])
    fpr = np.concatenate([[0.0], np.cumsum(1 - hits) / max((1 - hits).sum(), 1)])
    return fpr, tpr


def classification(probs: np.ndarray, labels: np.ndarray, names: list[str], out: Path,
                   title: str) -> Path:
    """ROC per target and a reliability diagram (pooled) from probabilities and 0/1 labels."""
    fig, (roc_ax, rel_ax) = _figure(11, 4.6, ncols=2)
    cmap = matplotlib.colormaps["viridis"]
    for k in range(labels.shape[1]):
        if labels[:, k].min() == labels[:, k].max():
            continue   # one class only: no ROC curve
        fpr, tpr = _roc(labels[:, k], probs[:, k])
        auc = metrics.roc_auc(labels[:, k], probs[:, k])
        roc_ax.plot(fpr, tpr, color=cmap(k / max(labels.shape[1] - 1, 1)), lw=1.2, label=f"{names[k]} ({auc:.3f})")
    roc_ax.plot([0, 1], [0, 1], "k--", lw=0.8)
    roc_ax.set_xlabel("false positive rate")
    roc_ax.set_ylabel("true positive rate")
    roc_ax.set_title("ROC per target (AUC)")
    roc_ax.legend(fontsize=6, loc="lower right")
    bins = np.linspace(0, 1, 11)
    p, y = probs.ravel(), labels.ravel()
    which = np.minimum(np.digitize(p, bins) - 1, 9)
    mean_p = np.array([p[which == b].mean() if (which == b).any() else np.nan for b in range(10)])
    freq = np.array([y[which == b].mean() if (which == b).any() else np.nan for b in range(10)])
    count = np.bincount(which, minlength=10)
    rel_ax.plot([0, 1], [0, 1], "k--", lw=0.8, label="perfectly calibrated")
    rel_ax.plot(mean_p, freq, marker="o", label="model")
    rel_ax.bar(bins[:-1] + 0.05, count / count.sum(), width=0.09, alpha=0.25, color="grey", label="share of predictions")
    ece = metrics.expected_calibration_error(labels, probs)
    rel_ax.set_title(f"Reliability diagram (ECE {ece:.3f})")
    rel_ax.set_xlabel("predicted probability")
    rel_ax.set_ylabel("observed frequency")
    rel_ax.legend(fontsize=7)
    fig.suptitle(title)
    return _save(fig, out)


def regression(outputs: np.ndarray, labels: np.ndarray, names: list[str], out: Path, title: str) -> Path:
    """Predicted against true per target, and the percentiles of the absolute error."""
    outputs, labels = outputs.reshape(len(outputs), -1), labels.reshape(len(labels), -1)
    k = labels.shape[1]
    fig, axes = _figure(4.2 * (k + 1), 4.2, ncols=k + 1)
    for i in range(k):
        ax = axes[i]
        ax.scatter(labels[:, i], outputs[:, i], s=3, alpha=0.3)
        lo, hi = np.percentile(labels[:, i], [0.5, 99.5])
        ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
        ax.set_xlabel(f"true {names[i]}")
        ax.set_ylabel(f"predicted {names[i]}")
        ax.set_title(names[i])
    error = np.abs(outputs - labels)
    q = np.arange(1, 100)
    ax = axes[-1]
    for i in range(k):
        ax.plot(q, np.percentile(error[:, i], q), label=names[i])
    for mark in (50, 90, 95, 99):
        ax.axvline(mark, color="0.8", lw=0.8)
    ax.set_xlabel("percentile")
    ax.set_ylabel("absolute error")
    ax.set_title("Error percentiles (50/90/95/99 marked)")
    ax.legend(fontsize=8)
    fig.suptitle(title)
    return _save(fig, out)


def all_plots(experiment_dir: str | Path, out_dir: str | Path | None = None) -> dict[str, Path]:
    """Every plot that applies to the experiment, as {name: path} (PNG under `plots/`)."""
    experiment_dir = Path(experiment_dir)
    out_dir = Path(out_dir) if out_dir else experiment_dir / PLOTS_DIR
    s = experiment.load_spec(experiment_dir)
    results = store.load(experiment_dir)
    drawn = {
        "learning_curves": learning_curves(results, s.metric, s.mode, out_dir / "learning_curves.png"),
        "metric_vs_lr": metric_vs_lr(results, s.metric, s.mode, out_dir / "metric_vs_lr.png"),
        "parallel_coordinates": parallel_coordinates(results, s.params, s.metric, s.mode,
                                                     out_dir / "parallel_coordinates.png"),
        "importance": importance(results, s.params, s.metric, s.mode, out_dir / "importance.png"),
        "pareto_front": pareto_front(pareto.annotated(results.trials, results.curves, s), s.objectives,
                                     out_dir / "pareto_front.png"),
    }
    try:
        best, workload, meta, outputs, labels = champion.predictions(experiment_dir)
        title = f"best trial {best.trial} on the validation split"
        names = [str(n) for n in meta.get("target_names", [])]
        task = task_of(workload, meta)
        if task in ("binary", "multilabel"):
            drawn["classification"] = classification(champion.probabilities(workload, outputs),
                                                     labels.reshape(len(labels), -1), names,
                                                     out_dir / "classification.png", title)
        elif task == "regression":
            drawn["regression"] = regression(outputs, labels, names, out_dir / "regression.png", title)
    except Exception as exc:  # noqa: BLE001 - no champion (all failed) or no checkpoint: skip its plots
        log.warning("plots of the best trial skipped: %s", exc)
    return {name: path for name, path in drawn.items() if path is not None}
