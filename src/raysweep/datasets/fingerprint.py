"""A dataset's fingerprint: which validation and test data an experiment was judged on.

Champions of several experiments are comparable only when their validation scores come from the
same rows: `raysweep champion` compares experiments whose `val` fingerprints agree, and a new
champion replaces the registered one only when both were scored on the same test split (`test`).
The fingerprints are taken when a sweep starts (experiment.write_data_fingerprint), so a
dataset rewritten later does not make an old experiment look comparable.

`val` hashes `meta.json` (its columns, scalers fitted on train, row counts) with every val
shard's name and bytes; `test` hashes the test shards the same way. Content, not modification
times: the same data copied elsewhere, or to a bucket, has the same fingerprint.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from raysweep.datasets import location, shards

CHUNK = 1 << 20
SHORT = 12   # the hex digits a table shows


def _add_split(digest, data_dir: str | Path, split: str, fmt: str) -> bool:
    """Feed a split's shards (names and bytes, in order) to `digest`; False where it has none."""
    paths = shards.shard_paths(data_dir, split, fmt)
    for path in paths:
        digest.update(f"\0{split}/{Path(str(path)).name}\0".encode())
        with location.open_input(path) as stream:
            while chunk := stream.read(CHUNK):
                digest.update(chunk)
    return bool(paths)


def fingerprints(data_dir: str | Path) -> dict:
    """{"val": hex, "test": hex or None, "path": where it was read}; None where no test split."""
    meta = shards.read_meta(data_dir)
    fmt = meta.get("format", "parquet")
    val = hashlib.sha256(json.dumps(meta, sort_keys=True).encode())
    _add_split(val, data_dir, "val", fmt)
    test = hashlib.sha256()
    has_test = _add_split(test, data_dir, "test", fmt)
    return {"val": val.hexdigest(), "test": test.hexdigest() if has_test else None,
            "path": location.absolute(data_dir)}


def short(fingerprint: str | None) -> str:
    return fingerprint[:SHORT] if fingerprint else "-"
