"""Metrics in numpy: ROC-AUC with ties, expected calibration error, regression errors.

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


def expected_calibration_error(labels: np.ndarray, probs: np.ndarray, n_bins: int = 15) -> float:
    """ECE over all targets pooled: sum over equal-width bins of |accuracy - confidence| * share."""
    labels = np.asarray(labels, dtype=np.float64).ravel()
    probs = np.asarray(probs, dtype=np.float64).ravel()
    bins = np.minimum((probs * n_bins).astype(int), n_bins - 1)
    sum_prob = np.bincount(bins, weights=probs, minlength=n_bins)
    sum_label = np.bincount(bins, weights=labels, minlength=n_bins)
    return float(np.abs(sum_label - sum_prob).sum() / max(labels.size, 1))


def regression(true: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """MAE, RMSE and R^2 (averaged over target columns, as scikit-learn's r2_score does)."""
    true = np.asarray(true, dtype=np.float64).reshape(len(true), -1)
    predicted = np.asarray(predicted, dtype=np.float64).reshape(len(predicted), -1)
    error = predicted - true
    return {"mae": float(np.abs(error).mean()), "rmse": float(np.sqrt((error ** 2).mean())),
            "r2": 1.0 - standardised_mse(true, predicted)}


def standardised_mse(true: np.ndarray, predicted: np.ndarray) -> float:
    """Mean over target columns of MSE / variance of the truth: the share of variance unexplained.

    Scale-free, so trials of one sweep compare on it whatever loss or units they trained with.
    """
    true = np.asarray(true, dtype=np.float64).reshape(len(true), -1)
    predicted = np.asarray(predicted, dtype=np.float64).reshape(len(predicted), -1)
    variance = np.maximum(true.var(axis=0), 1e-12)
    return float((((predicted - true) ** 2).mean(axis=0) / variance).mean())
