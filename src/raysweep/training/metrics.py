"""Metrics in numpy: ROC-AUC with ties, precision-recall (average precision, F-beta and F1 at
their best threshold), expected calibration error, regression errors, and `for_task`: the
validation metrics of each task, which every workload of that task reports alike.

Plain numpy rather than scikit-learn: two small functions do not justify the dependency, and
they run on the worker after each validation pass.
"""

from __future__ import annotations

import numpy as np


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """ROC-AUC for one binary target (Mann-Whitney U with average ranks for ties).

    Returns NaN when only one class is present, since the AUC is undefined there.
    """
    labels = np.asarray(labels).astype(bool).ravel()
    scores = np.asarray(scores, dtype=np.float64).ravel()
    n_pos = int(labels.sum())
    n_neg = labels.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    _, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    average_rank = np.cumsum(counts) - (counts - 1) / 2.0  # 1-based rank shared by ties
    ranks = average_rank[inverse]
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def macro_roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Mean ROC-AUC over columns, skipping columns where only one class occurs."""
    aucs = [roc_auc(labels[:, k], scores[:, k]) for k in range(labels.shape[1])]
    aucs = [a for a in aucs if not np.isnan(a)]
    return float(np.mean(aucs)) if aucs else float("nan")


def _undefined(labels: np.ndarray, scores: np.ndarray) -> bool:
    """No rows, or a score that is not a number (a diverged model must not look like a ranking)."""
    return np.asarray(labels).size == 0 or not np.isfinite(np.asarray(scores, dtype=np.float64)).all()


def _precision_recall(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """(precision, recall, threshold) at each distinct score, from the highest down, and the
    number of positives. Predicting positive at `score >= threshold` gives that point."""
    labels = np.asarray(labels).astype(bool).ravel()
    scores = np.asarray(scores, dtype=np.float64).ravel()
    order = np.argsort(-scores, kind="stable")
    sorted_scores, sorted_labels = scores[order], labels[order]
    last_of_tie = np.r_[np.flatnonzero(np.diff(sorted_scores)), sorted_scores.size - 1]
    true_pos = np.cumsum(sorted_labels)[last_of_tie]
    predicted_pos = last_of_tie + 1
    n_pos = int(labels.sum())
    return true_pos / predicted_pos, true_pos / max(n_pos, 1), sorted_scores[last_of_tie], n_pos


def average_precision(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the precision-recall curve, as scikit-learn's average_precision_score computes
    it (precision summed over the steps in recall). What matters for rare positives, where the
    ROC-AUC flatters a model. NaN without positives or with non-finite scores."""
    if _undefined(labels, scores):
        return float("nan")
    precision, recall, _, n_pos = _precision_recall(labels, scores)
    if n_pos == 0:
        return float("nan")
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def best_fbeta(labels: np.ndarray, scores: np.ndarray, beta: float = 1.0) -> tuple[float, float]:
    """(F-beta, threshold): the best F-beta over the thresholds the scores offer, and that
    threshold, the operating point a deployment would pick on validation data. beta > 1 weighs
    recall higher (beta 2: a missed positive costs as much as four false alarms), beta < 1
    precision. (NaN, NaN) without positives or with non-finite scores."""
    if _undefined(labels, scores):
        return float("nan"), float("nan")
    precision, recall, thresholds, n_pos = _precision_recall(labels, scores)
    if n_pos == 0:
        return float("nan"), float("nan")
    b2 = beta * beta
    denominator = b2 * precision + recall
    fbeta = np.where(denominator > 0, (1 + b2) * precision * recall / np.maximum(denominator, 1e-12), 0.0)
    best = int(np.argmax(fbeta))
    return float(fbeta[best]), float(thresholds[best])


def fbeta_at(labels: np.ndarray, scores: np.ndarray, threshold: float, beta: float = 1.0) -> float:
    """F-beta of predicting positive at `score >= threshold`: a threshold chosen elsewhere (on
    validation) applied to new data, as a deployment applies it. NaN without positives."""
    labels = np.asarray(labels).astype(bool).ravel()
    chosen = np.asarray(scores, dtype=np.float64).ravel() >= threshold
    if not labels.any():
        return float("nan")
    b2 = beta * beta
    true_pos = float(np.sum(chosen & labels))
    return float((1 + b2) * true_pos / (b2 * labels.sum() + chosen.sum()))


def best_f1(labels: np.ndarray, scores: np.ndarray) -> tuple[float, float]:
    """(F1, threshold) at the best threshold: `best_fbeta` with beta 1."""
    return best_fbeta(labels, scores, 1.0)


def expected_calibration_error(labels: np.ndarray, probs: np.ndarray, n_bins: int = 15) -> float:
    """ECE over all targets pooled: sum over equal-width bins of |accuracy - confidence| * share."""
    labels = np.asarray(labels, dtype=np.float64).ravel()
    probs = np.asarray(probs, dtype=np.float64).ravel()
    bins = np.minimum((probs * n_bins).astype(int), n_bins - 1)
    sum_prob = np.bincount(bins, weights=probs, minlength=n_bins)
    sum_label = np.bincount(bins, weights=labels, minlength=n_bins)
    return float(np.abs(sum_label - sum_prob).sum() / max(labels.size, 1))


def regression(true: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """MAE, RMSE and R^2 (averaged over target columns, as scikit-learn's r2_score does; over the
    columns that vary, NaN where none does)."""
    true = np.asarray(true, dtype=np.float64).reshape(len(true), -1)
    predicted = np.asarray(predicted, dtype=np.float64).reshape(len(predicted), -1)
    error = predicted - true
    varies = true.var(axis=0) > 0   # R^2 of a constant target is undefined (scikit-learn gives 0 or -inf)
    r2 = 1.0 - standardised_mse(true[:, varies], predicted[:, varies]) if varies.any() else float("nan")
    return {"mae": float(np.abs(error).mean()), "rmse": float(np.sqrt((error ** 2).mean())), "r2": r2}


def standardised_mse(true: np.ndarray, predicted: np.ndarray) -> float:
    """Mean over target columns of MSE / variance of the truth: the share of variance unexplained.

    Scale-free, so trials of one sweep compare on it whatever loss or units they trained with.
    """
    true = np.asarray(true, dtype=np.float64).reshape(len(true), -1)
    predicted = np.asarray(predicted, dtype=np.float64).reshape(len(predicted), -1)
    variance = np.maximum(true.var(axis=0), 1e-12)
    return float((((predicted - true) ** 2).mean(axis=0) / variance).mean())


# --- metrics by task, from one place --------------------------------------------------------------
# Every workload that predicts a task's outputs (the tabular MLP, the model families, Glideator's
# distance thresholds) reports these names, so `metric: val_fbeta` means the same in any of them.
METRICS_BY_TASK = {
    "regression": ("val_loss", "val_mae", "val_rmse", "val_r2"),
    "binary": ("val_loss", "val_auc", "val_accuracy", "val_ece", "val_fbeta", "val_average_precision"),
    "multilabel": ("val_loss", "val_auc", "val_accuracy", "val_ece", "val_fbeta", "val_average_precision"),
    "multiclass": ("val_loss", "val_accuracy", "val_fbeta"),
}
MODES = {"val_loss": "min", "val_mae": "min", "val_rmse": "min", "val_r2": "max", "val_auc": "max",
         "val_accuracy": "max", "val_ece": "min", "val_fbeta": "max", "val_average_precision": "max"}
# Reported beside val_fbeta for a binary task: the score above which a deployment predicts positive
# (the threshold that maximised F-beta on validation). A fact about the model, not an objective.
THRESHOLD = "val_fbeta_threshold"
# The key of a dataset's meta under which the loop hands `compute_metrics` the config's `fbeta_beta`
# (the contract's signature stays `compute_metrics(outputs, labels, meta)`).
BETA_KEY = "fbeta_beta"
PROBABILITY_FLOOR = 1e-7   # log loss of a probability 0 or 1 would be infinite


def beta_of(meta: dict) -> float:
    """The beta of `val_fbeta` the loop recorded in `meta` (1 where none was)."""
    return float(meta.get(BETA_KEY, 1.0))


def for_task(task: str, labels: np.ndarray, predictions: np.ndarray, *, beta: float = 1.0) -> dict[str, float]:
    """The task's validation metrics (`METRICS_BY_TASK`) over a whole split.

    `predictions` are probabilities for classification (one column per label or class) and
    values in the targets' units for regression. `val_loss` is then the log loss (binary
    cross-entropy per label, or cross-entropy over classes) or the standardised MSE. A workload
    with logits at hand may replace `val_loss` with its exact value from them.
    `val_fbeta` is the best F-beta over thresholds (binary; for multilabel the mean over labels,
    each at its own threshold) or the macro F-beta of the most probable class (multiclass).
    """
    predictions = np.asarray(predictions, dtype=np.float64)
    if task == "regression":
        m = regression(labels, predictions)
        return {"val_loss": standardised_mse(labels, predictions), "val_mae": m["mae"], "val_rmse": m["rmse"],
                "val_r2": m["r2"]}
    probs = np.clip(predictions, PROBABILITY_FLOOR, 1 - PROBABILITY_FLOOR)
    if task == "multiclass":
        target = np.asarray(labels).astype(np.int64).ravel()
        probs = probs.reshape(len(target), -1)
        chosen = probs.argmax(axis=1)
        return {"val_loss": float(-np.log(probs[np.arange(len(target)), target]).mean()),
                "val_accuracy": float((chosen == target).mean()),
                "val_fbeta": macro_fbeta(target, chosen, probs.shape[1], beta)}
    labels = np.asarray(labels, dtype=np.float64).reshape(len(probs), -1)
    probs = probs.reshape(labels.shape)
    per_label = [best_fbeta(labels[:, k], probs[:, k], beta) for k in range(labels.shape[1])]
    fbetas = [f for f, _ in per_label if not np.isnan(f)]
    out = {"val_loss": float(-(labels * np.log(probs) + (1 - labels) * np.log(1 - probs)).mean()),
           "val_auc": macro_roc_auc(labels, probs),
           "val_accuracy": float(((probs > 0.5) == (labels > 0.5)).mean()),
           "val_ece": expected_calibration_error(labels, probs),
           "val_fbeta": float(np.mean(fbetas)) if fbetas else float("nan"),
           "val_average_precision": float(np.nanmean([average_precision(labels[:, k], probs[:, k])
                                                      for k in range(labels.shape[1])]))
           if labels.sum() > 0 else float("nan")}
    if task == "binary":
        out[THRESHOLD] = per_label[0][1]
    return out


def macro_fbeta(target: np.ndarray, chosen: np.ndarray, n_classes: int, beta: float = 1.0) -> float:
    """F-beta of each class one-vs-rest, averaged over the classes that occur (scikit-learn's
    `fbeta_score(average="macro")` over the labels present in truth or prediction)."""
    b2 = beta * beta
    scores = []
    for k in range(n_classes):
        true_pos = float(np.sum((chosen == k) & (target == k)))
        predicted, actual = float(np.sum(chosen == k)), float(np.sum(target == k))
        if predicted == 0 and actual == 0:
            continue
        denominator = b2 * actual + predicted
        scores.append((1 + b2) * true_pos / denominator if denominator else 0.0)
    return float(np.mean(scores)) if scores else float("nan")
