"""Bring your own table: a CSV or Parquet file -> raysweep shards and `meta.json`.

    raysweep data import flights.csv --target distance_km --task regression \\
        --categorical site,pilot --split-by date --out data/flights

The `tabular` workload trains on the result with any spec. What the import decides, once, so
that every trial sees the same data:

- Features are every column except the targets, the split column and `--drop` ones. Numeric and boolean
  columns are numeric features; missing values are filled with the training mean (so they
  standardise to 0). A text column must be declared `--categorical`; its categories are
  numbered from the training split, and 0 stands for missing or unseen.
- Targets: `regression` takes numeric columns; `binary` one column of two values (the
  sorted second is the positive class); `multiclass` one column of any values (sorted
  into class indices); `multilabel` columns of 0/1. No target may be missing.
- Split: `--split-by COL` with values train/val(/test) uses them as given. Any other column
  is a group (a date, a site, a patient): the last `--val-fraction` of its sorted values go to
  validation, so no group is in both. Without `--split-by`, rows are split at random (seeded).
- Scalers are fitted on the training split only.

Every problem is a `DataError` naming the column and the fix; the CLI prints it and exits 2.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pyarrow import csv

from raysweep.checks import did_you_mean
from raysweep.datasets import shards

TASKS = ("regression", "binary", "multiclass", "multilabel")
SPLIT_NAMES = {"train", "val", "test"}
READERS = {".csv": "csv", ".tsv": "csv", ".parquet": "parquet", ".pq": "parquet"}


def read_table(path: str | Path) -> pa.Table:
    path = Path(path)
    if not path.is_file():
        raise shards.DataError(f"{path} does not exist; give the path of a CSV or Parquet file")
    kind = READERS.get(path.suffix.lower())
    if kind is None:
        raise shards.DataError(f"{path}: unknown file type {path.suffix!r}; import reads "
                               f"{', '.join(READERS)} files")
    try:
        if kind == "csv":
            options = csv.ParseOptions(delimiter="\t" if path.suffix.lower() == ".tsv" else ",")
            return csv.read_csv(path, parse_options=options)
        return pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise shards.DataError(f"{path} could not be read as {kind.upper()}: {exc}") from None


def _column(table: pa.Table, name: str, role: str) -> pa.ChunkedArray:
    if name not in table.column_names:
        raise shards.DataError(f"{role} column {name!r} is not in the table.{did_you_mean(name, table.column_names)} "
                               f"Columns: {', '.join(table.column_names)}.")
    return table[name]


def _is_numeric(column: pa.ChunkedArray) -> bool:
    t = column.type
    return pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t) or pa.types.is_null(t)


def _numeric(column: pa.ChunkedArray) -> np.ndarray:
    return column.cast(pa.float64()).to_numpy(zero_copy_only=False)


def _strings(column: pa.ChunkedArray) -> np.ndarray:
    """Values as strings, missing as None (so categories of ints and of text sort alike)."""
    return np.asarray(pc.cast(column, pa.string()).to_pylist(), dtype=object)


def _split(table: pa.Table, split_by: str | None, val_fraction: float, seed: int,
           test_fraction: float = 0.0) -> tuple[np.ndarray, dict]:
    """Each row's split name, and a description for meta.json.

    With `test_fraction`, a test split is held out first (random rows, or the last groups, after
    val's), which no sweep reads: `raysweep evaluate` scores the final choice on it once.
    """
    n = table.num_rows
    if split_by is None:
        order = np.random.default_rng(seed).permutation(n)
        n_test = max(1, int(round(n * test_fraction))) if test_fraction else 0
        n_val = max(1, int(round(n * val_fraction)))
        names = np.full(n, "train", dtype=object)
        names[order[:n_val]] = "val"
        names[order[n_val:n_val + n_test]] = "test"
        info = {"by": "random rows", "val_fraction": val_fraction, "seed": seed}
        return names, {**info, "test_fraction": test_fraction} if test_fraction else info
    values = _strings(_column(table, split_by, "--split-by"))
    if any(v is None for v in values):
        raise shards.DataError(f"--split-by column {split_by!r} has missing values; fill them or split another way")
    distinct = sorted(set(values))
    if len(distinct) < 2:
        raise shards.DataError(f"--split-by column {split_by!r} has one value ({distinct[0]!r}), so it "
                               "cannot split train from val; give a column with several values, or --val-fraction")
    if set(distinct) <= SPLIT_NAMES:
        if not {"train", "val"} <= set(distinct):
            raise shards.DataError(f"--split-by column {split_by!r} names splits but lacks "
                                   f"{sorted({'train', 'val'} - set(distinct))}")
        if test_fraction:
            raise shards.DataError(f"--split-by column {split_by!r} names the splits already; mark the test rows "
                                   "'test' in it instead of --test-fraction")
        return values, {"by": split_by, "as_given": True}
    try:  # numbers and dates sort as numbers, not as text
        distinct = [d for _, d in sorted((float(v), v) for v in distinct)]
    except ValueError:
        pass
    n_test = max(1, int(round(len(distinct) * test_fraction))) if test_fraction else 0
    n_val = max(1, int(round(len(distinct) * val_fraction)))
    test_groups = set(distinct[len(distinct) - n_test:]) if n_test else set()
    val_groups = set(distinct[len(distinct) - n_test - n_val:len(distinct) - n_test])
    names = np.where(np.isin(values, list(val_groups)), "val", "train").astype(object)
    names[np.isin(values, list(test_groups))] = "test"
    info = {"by": split_by, "val_fraction": val_fraction, "val_values": sorted(val_groups)}
    if test_fraction:   # the last groups: the test split is the latest dates, the val split the ones before
        info.update(test_fraction=test_fraction, test_values=sorted(test_groups))
    return names, info


MISSING = ("refuse", "drop", "fill")


def _unusable(column: pa.ChunkedArray) -> np.ndarray:
    """Rows where a column holds no usable number: null, NaN or infinite (text columns: null)."""
    if not _is_numeric(column):
        return np.asarray(column.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    return ~np.isfinite(_numeric(column))


def _handle_missing(table: pa.Table, targets: list[str], features: list[str], missing: str) -> pa.Table:
    """Rows with a null, NaN or infinite feature or target: refused (the default, naming each
    column and count), dropped, or (features only) left for the training mean to fill."""
    if missing not in MISSING:
        raise shards.DataError(f"unknown --missing {missing!r}. Known: {', '.join(MISSING)}.")
    holes = {name: _unusable(table[name]) for name in [*targets, *features]}
    holes = {name: rows for name, rows in holes.items() if rows.any()}
    if not holes:
        return table
    bad_rows = np.logical_or.reduce(list(holes.values()))
    counts = ", ".join(f"{name!r} {int(rows.sum())}" for name, rows in holes.items())
    missing_targets = [name for name in holes if name in targets]
    if missing == "drop":
        return table.filter(pa.array(~bad_rows))
    if missing == "fill" and not missing_targets:
        return table
    if missing == "fill":
        raise shards.DataError(f"target(s) {', '.join(map(repr, missing_targets))} have missing (null, NaN or "
                               "infinite) values, which no fill can stand in for; use --missing drop")
    raise shards.DataError(f"missing (null, NaN or infinite) values in {int(bad_rows.sum())} of {table.num_rows} "
                           f"rows: {counts}. Re-run with --missing drop (leave those rows out) or --missing fill "
                           "(features take their training mean; targets cannot be filled)")


def _targets(table: pa.Table, targets: list[str], task: str) -> tuple[np.ndarray, dict]:
    """Labels as the loop reads them, and the classes where the task has them."""
    columns = [_column(table, t, "--target") for t in targets]
    if task in ("binary", "multiclass"):
        if len(targets) != 1:
            raise shards.DataError(f"--task {task} takes one target column, got {len(targets)}; "
                                   "use --task multilabel for several 0/1 columns")
        values = _strings(columns[0])
        classes = sorted(set(values), key=lambda v: (_as_number(v) is None, _as_number(v) or 0, v))
        if task == "binary" and len(classes) != 2:
            raise shards.DataError(f"--task binary needs a target with two values; {targets[0]!r} has "
                                   f"{len(classes)} ({', '.join(classes[:5])}{', ...' if len(classes) > 5 else ''}); "
                                   "use --task multiclass or regression")
        index = {c: i for i, c in enumerate(classes)}
        codes = np.array([index[v] for v in values])
        if task == "binary":
            return codes.astype(np.float32)[:, None], {"classes": classes, "positive_class": classes[1]}
        return codes.astype(np.int64), {"classes": classes}
    for name, column in zip(targets, columns):
        if not _is_numeric(column):
            raise shards.DataError(f"target {name!r} is {column.type}, not numeric; --task {task} needs numbers")
    labels = np.stack([_numeric(c) for c in columns], axis=1).astype(np.float32)
    if task == "multilabel":
        bad = [n for n, k in zip(targets, range(labels.shape[1])) if not np.isin(labels[:, k], (0.0, 1.0)).all()]
        if bad:
            raise shards.DataError(f"--task multilabel needs 0/1 targets; {', '.join(map(repr, bad))} hold other values")
    return labels, {}


def _as_number(value: str) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def import_table(path: str | Path, out_dir: str | Path, *, target: list[str], task: str,
                 categorical: list[str] = (), drop: list[str] = (), split_by: str | None = None,
                 val_fraction: float = 0.2, test_fraction: float = 0.0, missing: str = "refuse",
                 seed: int = 0, fmt: str = "parquet", rows_per_shard: int = 8192) -> dict:
    """Import a table as a raysweep dataset; returns the meta dict.

    Missing values (null, NaN, infinite) in a feature or target stop the import unless
    `missing` says what to do with them ("drop" the rows, or "fill" features with the training
    mean): a model that trains on holes diverges or learns from them without anyone knowing.
    """
    if task not in TASKS:
        raise shards.DataError(f"unknown --task {task!r}.{did_you_mean(task, TASKS)} Known: {', '.join(TASKS)}.")
    if not 0 < val_fraction < 1:
        raise shards.DataError(f"--val-fraction must lie in (0, 1), got {val_fraction}")
    if not 0 <= test_fraction < 1 or val_fraction + test_fraction >= 1:
        raise shards.DataError(f"--test-fraction must lie in [0, 1) and leave rows for train beside --val-fraction "
                               f"{val_fraction}, got {test_fraction}")
    table = read_table(path)
    if table.num_rows == 0:
        raise shards.DataError(f"{path} has no rows")
    if not target:
        raise shards.DataError("--target names no column")
    for name in categorical:
        _column(table, name, "--categorical")
    for name in drop:
        _column(table, name, "--drop")
    for name in target:
        _column(table, name, "--target")

    taken = set(target) | set(drop) | ({split_by} if split_by else set())
    feature_cols = [c for c in table.column_names if c not in taken and c not in categorical]
    undeclared = [c for c in feature_cols if not _is_numeric(table[c])]
    if undeclared:
        raise shards.DataError(f"column(s) {', '.join(map(repr, undeclared))} are not numeric "
                               f"({', '.join(str(table[c].type) for c in undeclared)}); declare them "
                               f"--categorical {','.join(undeclared)}, or drop them from the file")
    if not feature_cols and not categorical:
        raise shards.DataError("the table has no feature columns besides the target and split column")
    table = _handle_missing(table, list(target), feature_cols, missing)
    if table.num_rows == 0:
        raise shards.DataError(f"{path}: no rows left once those with missing values are dropped")
    split_names, split_info = _split(table, split_by, val_fraction, seed, test_fraction)
    labels, classes = _targets(table, list(target), task)

    is_train = split_names == "train"
    if not is_train.any() or not (split_names == "val").any():
        raise shards.DataError("the split leaves train or val empty; change --split-by or --val-fraction")
    columns: dict[str, np.ndarray] = {}
    meta_columns: dict[str, str] = {}
    scaler = {"fitted_on": "train", "mean": [], "std": []}
    if feature_cols:
        x = np.stack([_numeric(table[c]) for c in feature_cols], axis=1)
        x = np.where(np.isfinite(x), x, np.nan)              # --missing fill: infinities count as holes
        mean = np.nanmean(np.where(is_train[:, None], x, np.nan), axis=0)
        mean = np.where(np.isnan(mean), 0.0, mean)          # a column missing in every train row
        x = np.where(np.isnan(x), mean, x).astype(np.float32)
        scaler["mean"], scaler["std"] = shards.standardisation(x[is_train])
        columns["features"], meta_columns["features"] = x, "features"
    cardinalities = {}
    if categorical:
        codes = []
        for name in categorical:
            values = _strings(table[name])
            seen = sorted({v for v in values[is_train] if v is not None})
            index = {v: i + 1 for i, v in enumerate(seen)}   # 0 = missing or unseen in train
            codes.append(np.array([index.get(v, 0) for v in values]))
            cardinalities[name] = len(seen) + 1
        columns["categorical"], meta_columns["categorical"] = np.stack(codes, axis=1).astype(np.float32), "categorical"
    columns["labels"], meta_columns["labels"] = labels, "labels"

    out_dir = Path(out_dir)
    rows = {}
    for split in ("train", "val", "test"):
        mask = split_names == split
        if mask.any():
            shards.write_split({k: v[mask] for k, v in columns.items()}, out_dir, split, fmt=fmt,
                               rows_per_shard=rows_per_shard)
            rows[split] = int(mask.sum())
    meta = {
        "workload": "tabular",
        "task": task,
        "format": fmt,
        "source": {"file": str(Path(path).resolve()), "rows": table.num_rows,
                   "sha256": hashlib.sha256(Path(path).read_bytes()).hexdigest()},
        "columns": meta_columns,
        "feature_names": feature_cols,
        "categorical_names": list(categorical),
        "cardinalities": cardinalities,
        "target_names": list(target),
        **classes,
        "rows": rows,
        "split": split_info,
        "missing": missing,
        "scaler": scaler,
    }
    if task == "regression":
        meta["target_scaler"] = dict(zip(("mean", "std"), shards.standardisation(labels[is_train])),
                                     fitted_on="train")
    shards.write_meta(out_dir, meta)
    return meta
