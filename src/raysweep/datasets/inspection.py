"""Check a dataset's shards against its meta.json before a sweep starts, and cheaply.

What a sweep would otherwise meet inside every trial, or never notice: a shard without a column
meta.json names or with another type or shape than the first shard's, an empty split, shards
that hold a different number of rows than meta.json says, null, NaN or infinite values.

Parquet footers answer the structure, the row counts and the null counts of every row without
reading data. NaN and infinities are not in Parquet's statistics, so values are read for a
sample: whole shards in order until `SAMPLE_ROWS` rows or `SAMPLE_BYTES` of each split
(WebDataset: the first `SAMPLE_SAMPLES` samples, decoded one by one, and every member header
for the row count); every message says how many rows it saw. A large dataset stays cheap.
"""

from __future__ import annotations

import io
import tarfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from raysweep.datasets import location, shards, webdataset

SAMPLE_ROWS = 50_000
SAMPLE_BYTES = 256 << 20
SAMPLE_SAMPLES = 2_000
FIX = "regenerate or re-import the dataset"


@dataclass
class Inspection:
    rows: dict[str, int] = field(default_factory=dict)      # per split, counted in the shards
    problems: list[str] = field(default_factory=list)
    # per split: the values of each column in the sample read (datasets.teachability reads them)
    samples: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)


def inspect(data_dir: str | Path, meta: dict) -> Inspection:
    """Every shard's structure and row count, and a sample of its values, against meta.json."""
    fmt = meta.get("format", "parquet")
    columns = list(dict.fromkeys((meta.get("columns") or {}).values()))
    found = Inspection()
    if not columns:
        found.problems.append(f"meta.json names no columns (its \"columns\" maps each role to a column); {FIX}")
        return found
    for split in shards.SPLITS:
        paths = shards.shard_paths(data_dir, split, fmt)
        check = _parquet_split if fmt == "parquet" else _webdataset_split
        before = len(found.problems)
        found.rows[split], values = check(paths, columns, split, found.problems)
        found.samples[split] = _joined(values)
        expected = meta.get("rows", {}).get(split)
        if any(p.startswith("shard ") for p in found.problems[before:]):
            continue   # the rows of a broken shard are not counted: that is no news
        if found.rows[split] == 0:
            found.problems.append(f"the {split} split holds no rows; {FIX}")
        elif expected is not None and expected != found.rows[split]:
            found.problems.append(f"the {split} shards hold {found.rows[split]} rows, meta.json says {expected}: "
                                  f"the shards changed after the dataset was written; {FIX}")
    return found


def seen(found: Inspection, meta: dict) -> dict[str, str]:
    """Per split, how much of it the sample holds: "all 640 rows" or "a sample of 50000 of 90000 rows"."""
    labels = (meta.get("columns") or {}).get("labels")
    out = {}
    for split, rows in found.rows.items():
        sampled = len(found.samples.get(split, {}).get(labels, ())) if labels else rows
        out[split] = f"all {rows} rows seen" if sampled >= rows else f"a sample of {sampled} of {rows} rows seen"
    return out


def _joined(values: dict[str, list[np.ndarray]]) -> dict[str, np.ndarray]:
    joined = {}
    for column, parts in values.items():
        parts = [p for p in parts if p.size]
        try:
            joined[column] = np.concatenate(parts) if parts else np.zeros(0)
        except ValueError:   # shards of other shapes: reported as problems already
            continue
    return joined


def _parquet_split(paths: list[str], columns: list[str], split: str,
                   problems: list[str]) -> tuple[int, dict[str, list[np.ndarray]]]:
    rows, nulls, first_types = 0, Counter(), {}
    sample, sampled, sampled_bytes = [], 0, 0
    for path in paths:
        metadata = _footer(path, problems)
        if metadata is None:
            continue
        schema = metadata.schema.to_arrow_schema()
        fits = True
        for column in columns:
            if column not in schema.names:
                fits = False
                problems.append(f"shard {path} has no column {column!r} (meta.json names {', '.join(columns)}); {FIX}")
            elif first_types.setdefault(column, schema.field(column).type) != schema.field(column).type:
                fits = False
                problems.append(f"shard {path}: column {column!r} is {schema.field(column).type}, the split's first "
                                f"shard has {first_types[column]}; {FIX}")
        nulls.update(_null_counts(metadata, columns))
        rows += metadata.num_rows
        if sampled < SAMPLE_ROWS and sampled_bytes < SAMPLE_BYTES and fits:
            try:
                with location.open_input(path) as stream:
                    table = pq.read_table(stream, columns=columns)
            except Exception as exc:  # noqa: BLE001 - a footer that reads over data that does not
                problems.append(f"shard {path} is unreadable ({type(exc).__name__}: {exc}); {FIX}")
                continue
            sample.append(table)
            sampled += table.num_rows
            sampled_bytes += sum(metadata.row_group(g).total_byte_size for g in range(metadata.num_row_groups))
    for column, n in nulls.items():
        if n:
            problems.append(f"the {split} split's column {column!r} has {n} null values (all {rows} rows checked); {FIX}")
    # A column with nulls is reported as such; its values cannot take one shape to be read.
    values = {c: [shards.column_values(t[c]) for t in sample] for c in columns if not nulls[c]}
    _non_finite(split, values, sampled, rows, problems)
    return rows, values


def _footer(path: str, problems: list[str]):
    try:
        with location.open_input(path) as stream:
            return pq.read_metadata(stream)
    except Exception as exc:  # noqa: BLE001 - pyarrow raises several types for a broken file
        problems.append(f"shard {path} is unreadable ({type(exc).__name__}: {exc}); {FIX}")
        return None


def _null_counts(metadata, columns: list[str]) -> Counter:
    """Nulls per top-level column from the row groups' statistics (a tensor column's leaves)."""
    counts = Counter()
    for g in range(metadata.num_row_groups):
        group = metadata.row_group(g)
        for c in range(group.num_columns):
            chunk = group.column(c)
            top = chunk.path_in_schema.split(".")[0]
            if top in columns and chunk.statistics is not None and chunk.statistics.has_null_count:
                counts[top] += chunk.statistics.null_count
    return counts


def _webdataset_split(paths: list[str], columns: list[str], split: str,
                      problems: list[str]) -> tuple[int, dict[str, list[np.ndarray]]]:
    rows, sampled = 0, 0
    values: dict[str, list[np.ndarray]] = {c: [] for c in columns}
    for path in paths:
        try:
            with location.open_input(path) as stream, tarfile.open(fileobj=stream) as tar:
                keys, present = set(), set()
                for member in tar:   # headers only, but every one: the row count
                    name = member.name.removeprefix("./")
                    if not member.isfile() or "." not in name:
                        continue
                    key, column, suffix = webdataset.split_name(name)
                    keys.add(key)
                    present.add(column)
                    if column not in values or len(values[column]) >= SAMPLE_SAMPLES:
                        continue
                    if suffix == "npy":
                        values[column].append(np.load(io.BytesIO(tar.extractfile(member).read()))[None])
                    elif suffix in webdataset.LABELS:   # an integer label as text (webdataset's `cls`)
                        text = tar.extractfile(member).read()
                        if text.strip().lstrip(b"-").isdigit():   # not one: the shard reader names it
                            values[column].append(np.array([int(text)]))
                for column in columns:
                    if column not in present:
                        problems.append(f"shard {path} has no member for column {column!r} "
                                        f"(meta.json names {', '.join(columns)}); {FIX}")
                sampled = max((len(v) for v in values.values()), default=0)
                rows += len(keys)
        except (tarfile.TarError, OSError, ValueError) as exc:
            problems.append(f"shard {path} is unreadable ({type(exc).__name__}: {exc}); {FIX}")
    _non_finite(split, values, sampled, rows, problems)
    return rows, values


def _non_finite(split: str, values: dict[str, list[np.ndarray]], sampled: int, rows: int,
                problems: list[str]) -> None:
    """NaN or infinite values per floating-point column of the sample, with the rows they are in."""
    seen = f"all {rows} rows checked" if sampled >= rows else f"in a sample of {sampled} of {rows} rows"
    for column, parts in values.items():
        parts = [p for p in parts if p.size]
        if not parts or parts[0].dtype.kind != "f":
            continue
        data = np.concatenate(parts)
        bad = ~np.isfinite(data)
        if bad.any():
            bad_rows = int(bad.reshape(len(data), -1).any(axis=1).sum())
            problems.append(f"the {split} split's column {column!r} holds {int(bad.sum())} NaN or infinite values in "
                            f"{bad_rows} rows ({seen}); fix the data, or re-import a table with --missing drop or fill")
