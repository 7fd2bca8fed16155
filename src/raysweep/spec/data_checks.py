"""Check the dataset a spec names, before Ray starts: its meta.json, its shards, and whether its
splits hold enough rows for the batches the spec asks for."""

from __future__ import annotations

from raysweep.checks import is_int, is_number
from raysweep.datasets import inspection, shards, teachability
from raysweep.search.space import Param, baseline
from raysweep.spec.problems import Problems
from raysweep.workloads import load_workload
from raysweep.workloads.references import data_example


def readable_meta(problems: Problems, key: str, path: str, workload: str) -> dict | None:
    """The meta.json of a dataset whose shards match it (`datasets.inspection`); else the
    problems, with the command that makes the dataset where it is missing."""
    try:
        meta = shards.read_meta(path, make_hint=data_example(workload, path))
    except shards.DataError as exc:
        problems.bad(key, str(exc))
        return None
    found = inspection.inspect(path, meta)
    for line in found.problems:
        problems.bad(key, line)
    if found.problems:
        return None
    task = meta.get("task") or getattr(load_workload(workload), "TASK", None)
    cannot = teachability.warnings(found.samples, meta, task, inspection.seen(found, meta))
    for warning in cannot:
        problems.warn(key, warning.text)
    problems.undefined.update(teachability.undefined_metrics(cannot))
    return meta


def largest_batch(fixed: dict, params: list[Param], default: int, *, sampled: bool = True) -> tuple[str, int | None]:
    """(key, rows): where batch_size is set and the largest batch a trial takes: of every value
    the search may pick (`sampled`), or of the baseline's (a choice's first value, a range's
    middle: space.baseline). None where the spec's value is not a number (its own check says so)."""
    for p in params:
        if p.name == "batch_size":
            values = (list(p.values) if p.is_choice else [p.high]) if sampled else [baseline([p])["batch_size"]]
            values = [v for v in values if is_number(v)]
            return "params.batch_size", int(max(values)) if values else None
    value = fixed.get("batch_size", default)
    return ("fixed.batch_size" if "batch_size" in fixed else "batch_size"), int(value) if is_int(value) else None


def enough_rows(problems: Problems, meta: dict, fixed: dict, params: list[Param], default_batch: int) -> None:
    """A training split smaller than one batch trains on a single short batch per epoch."""
    train = meta.get("rows", {}).get("train", 0)
    key, batch = largest_batch(fixed, params, default_batch)
    if batch is not None and 0 < train < batch:
        problems.bad(key, f"a batch of {batch} rows is more than the whole train split ({train} rows); "
                     f"lower it to {train} or less, or use more data", because_of=("data.path",))


def lr_find_problem(meta: dict, fixed: dict, params: list[Param], over: tuple[str, ...], subset_rows: int,
                    default_batch: int) -> str | None:
    """An LR range test over fewer rows than one of its batches cannot take a step."""
    train = meta.get("rows", {}).get("train", 0)
    # each value of batch_size where the range tests run over it, else the baseline's
    _, batch = largest_batch(fixed, params, default_batch, sampled="batch_size" in over)
    rows = min(subset_rows, train)
    if batch is None or not 0 < rows < batch:
        return None
    return (f"the LR range test trains on {rows} rows (lr_find.subset_rows {subset_rows}, train {train}), "
            f"fewer than one batch of {batch}; raise subset_rows or lower batch_size")
