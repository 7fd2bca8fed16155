"""What a dataset cannot teach, or score, as it stands: warnings, not errors.

A dataset may be well formed and still unable to do what a sweep asks of it: a validation split
with one class has no AUC (every trial's `val_auc` is NaN, and ranking on it ranks nothing), a
label that is constant teaches a constant, a feature column that never changes in the training
split carries no signal. raysweep trains on it anyway (the user may know better), but says so
before the first trial: `raysweep data`, `validate` and `run` print each warning, naming the
column, the split and the metrics left undefined, and the results store records why a metric
came out NaN (analysis.trial_rows).

Looked at on the sample `datasets.inspection` reads of each split (every row of a small dataset).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# The metrics a label without positives (or without negatives) leaves undefined, and those a
# constant target does (training/metrics.py: average precision and F-beta need a positive; AUC both).
NEED_POSITIVES = ("val_auc", "val_average_precision", "val_fbeta")
NEED_NEGATIVES = ("val_auc",)
NEED_A_VARYING_TARGET = ("val_r2",)
SHOWN = 5   # names listed in one warning before "and N more"


@dataclass(frozen=True)
class DataWarning:
    """One thing the data cannot teach or score, and the metrics it leaves NaN (in val)."""

    text: str
    undefined: tuple[str, ...] = ()


def _names(names: list[str]) -> str:
    shown = ", ".join(repr(n) for n in names[:SHOWN])
    return shown + (f" and {len(names) - SHOWN} more" if len(names) > SHOWN else "")


def _label_names(meta: dict, width: int) -> list[str]:
    names = list(meta.get("target_names") or [])
    return names if len(names) == width else [f"label {k}" for k in range(width)]


def _binary(split: str, labels: np.ndarray, meta: dict, seen: str) -> list[DataWarning]:
    labels = labels.reshape(len(labels), -1)
    names = _label_names(meta, labels.shape[1])
    no_positive = [n for n, col in zip(names, labels.T) if not (col == 1).any()]
    no_negative = [n for n, col in zip(names, labels.T) if not (col == 0).any()]
    found = []
    for lacking, which in ((no_positive, "positive"), (no_negative, "negative")):
        if not lacking:
            continue
        every = len(lacking) == labels.shape[1]
        needing = NEED_POSITIVES if which == "positive" else NEED_NEGATIVES
        undefined = needing if split == "val" and every else ()
        named = (_names(lacking) if len(lacking) == 1 or not every
                 else f"any of its {len(lacking)} labels ({_names(lacking)})")
        if split == "val":
            effect = (f"{', '.join(undefined)} {'is' if len(undefined) == 1 else 'are'} undefined (NaN) in every trial"
                      if every else f"{', '.join(needing)} leave {'it' if len(lacking) == 1 else 'them'} out of their "
                      "mean over labels")
        else:
            effect = "the model cannot learn to tell the classes apart"
        found.append(DataWarning(f"the {split} split has no {which} rows of {named} ({seen}): {effect}; "
                                 "use more data (more days, sites or rows) or another split", undefined))
    return found


def _multiclass(samples: dict[str, np.ndarray], meta: dict, seen: dict[str, str]) -> list[DataWarning]:
    classes = list(meta.get("classes") or [])

    def name(k) -> str:
        return repr(classes[int(k)]) if 0 <= int(k) < len(classes) else str(int(k))

    present = {split: set(np.unique(v.reshape(-1)).tolist()) for split, v in samples.items()}
    found = []
    for split, values in present.items():
        if len(values) == 1:
            (only,) = values
            undefined = ("val_fbeta",) if split == "val" else ()
            found.append(DataWarning(f"the {split} split holds one class only, {name(only)} ({seen[split]}); use more "
                                     "data or another split", undefined))
    if "train" in present and "val" in present and len(present["val"]) > 1:
        absent = sorted(present["train"] - present["val"])
        if absent:
            found.append(DataWarning(f"class(es) {', '.join(name(k) for k in absent)} are in the train split but not "
                                     f"in val ({seen['val']}): validation cannot score them"))
    return found


def _regression(split: str, labels: np.ndarray, meta: dict, seen: str) -> list[DataWarning]:
    labels = labels.reshape(len(labels), -1)
    names = _label_names(meta, labels.shape[1])
    constant = [n for n, col in zip(names, labels.T) if len(col) and np.all(col == col[0])]
    if not constant:
        return []
    every = len(constant) == labels.shape[1]
    undefined = NEED_A_VARYING_TARGET if split == "val" and every else ()
    effect = "val_r2 is undefined (NaN) in every trial" if undefined else (
        "the model learns a constant" if split == "train" else "val_r2 leaves it out")
    return [DataWarning(f"the {split} split's target {_names(constant)} is constant ({seen}): {effect}", undefined)]


def _constant_features(split: str, values: np.ndarray, names: list[str], seen: str) -> list[DataWarning]:
    if values.ndim != 2 or len(values) < 2:
        return []
    constant = [names[j] if j < len(names) else f"feature {j}" for j in range(values.shape[1])
                if np.all(values[:, j] == values[0, j])]
    if not constant:
        return []
    what = "carries no signal to learn from" if split == "train" else "cannot show what the model learnt from it"
    return [DataWarning(f"the {split} split's feature(s) {_names(constant)} are constant ({seen}): each "
                        f"{what}; leave it out (raysweep data import --drop) or check the data")]


def warnings(samples: dict[str, dict[str, np.ndarray]], meta: dict, task: str | None,
             seen: dict[str, str]) -> list[DataWarning]:
    """What the train and val samples cannot teach or score, for a dataset of `task` (None:
    labels are not looked at). `seen[split]` says how much was read ("all 640 rows")."""
    columns = meta.get("columns") or {}
    found: list[DataWarning] = []
    splits = [s for s in ("train", "val") if s in samples]
    labels = {s: samples[s][columns["labels"]] for s in splits if columns.get("labels") in samples[s]
              and samples[s][columns["labels"]].size}
    if task in ("binary", "multilabel"):
        for split, values in labels.items():
            found += _binary(split, values, meta, seen[split])
    elif task == "multiclass" and labels:
        found += _multiclass(labels, meta, seen)
    elif task == "regression":
        for split, values in labels.items():
            found += _regression(split, values, meta, seen[split])
    for split in splits:
        features = samples[split].get(columns.get("features", ""))
        if features is not None and features.size and features.dtype.kind in "fiub":
            found += _constant_features(split, features, list(meta.get("feature_names") or []), seen[split])
    return found


def undefined_metrics(found: list[DataWarning]) -> dict[str, str]:
    """Metric -> the warning that explains why it is NaN in every trial."""
    reasons: dict[str, str] = {}
    for warning in found:
        for metric in warning.undefined:
            reasons.setdefault(metric, warning.text)
    return reasons
