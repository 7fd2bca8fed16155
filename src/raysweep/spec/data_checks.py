"""Check a dataset a spec names: its meta.json reads and every shard opens."""

from __future__ import annotations

from raysweep.datasets import shards
from raysweep.spec.problems import Problems
from raysweep.workloads.references import data_example


def readable_meta(problems: Problems, key: str, path: str, workload: str) -> dict | None:
    """The meta.json of a dataset whose shards open; else a problem naming the command that makes it."""
    try:
        meta = shards.read_meta(path, make_hint=data_example(workload, path))
        shards.check_readable(path, meta)
        return meta
    except shards.DataError as exc:
        problems.bad(key, str(exc))
        return None
