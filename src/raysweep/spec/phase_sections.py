"""The spec's sections for the tuning phases: `lr_find:` and `io_search:`.

They describe `raysweep lr-find` and `raysweep io-search` (raysweep.phases). A spec without
`lr_find:` runs lr-find with the defaults in `schema.LRFind`; io-search needs its `io_search:`
section (at least the grid to try).
"""

from __future__ import annotations

from raysweep.checks import did_you_mean, is_int, is_number
from raysweep.search.space import Param
from raysweep.spec.data_checks import readable_meta
from raysweep.spec.problems import Problems
from raysweep.spec.schema import IO_CONFIG_KNOBS, IO_KNOBS, IO_SEARCH_KEYS, IOSearch, LRFind


def lr_find(problems: Problems, f: dict, params: list[Param]) -> LRFind:
    """The `lr_find:` section."""
    d = LRFind()
    n = lambda key, **kw: problems.number(f, "lr_find", key, getattr(d, key), **kw)  # noqa: E731
    start, end = n("start_lr", low=0, strict=True), n("end_lr", low=0, strict=True)
    if is_number(start) and is_number(end) and start >= end:
        problems.bad("lr_find", f"`start_lr < end_lr` must hold, but got {start:g} >= {end:g}. Swap them.")
    over = f.get("over", [])
    choices = {p.name for p in params if p.is_choice and p.name != "learning_rate"}
    if not isinstance(over, list) or any(name not in choices for name in over):
        problems.bad("lr_find.over", f"must list tuned choice or grid parameters to run one range test "
                     f"for each of their values; candidates: {', '.join(sorted(choices)) or 'none'}; got {over!r}")
        over = []
    fraction = n("fit_loss_fraction", low=0, strict=True)
    if is_number(fraction) and fraction >= 1:
        problems.bad("lr_find.fit_loss_fraction", f"must lie in (0, 1): the share of the first loss "
                     f"that counts as fitted, got {fraction!r}")
    return LRFind(start_lr=start, end_lr=end, num_steps=n("num_steps", low=2, integer=True),
                  stop_factor=n("stop_factor", low=1, strict=True),
                  smoothing=n("smoothing", low=0), subset_rows=n("subset_rows", low=1, integer=True),
                  over=tuple(over), fit_learning_rate=n("fit_learning_rate", low=0, strict=True, optional=True),
                  fit_loss_fraction=fraction, fit_max_steps=n("fit_max_steps", low=1, integer=True))


def io_search(problems: Problems, io, hints: dict, workload: str | None, check_data: bool) -> IOSearch | None:
    """The `io_search:` section, or None where the spec has none."""
    if io is None:
        return None
    if not isinstance(io, dict):
        problems.bad("io_search", "must be a mapping: {steps: 200, warmup_steps: 20, grid: {...}}")
        return None
    problems.known_keys(io, IO_SEARCH_KEYS, "io_search")
    steps = problems.number(io, "io_search", "steps", IOSearch.steps, low=1, integer=True)
    warmup = problems.number(io, "io_search", "warmup_steps", IOSearch.warmup_steps, low=0, integer=True)
    if is_int(steps) and is_int(warmup) and warmup >= steps:
        problems.bad("io_search.warmup_steps", f"{warmup} leaves no timed step of {steps}; lower it")
    grid = io.get("grid")
    if not isinstance(grid, dict) or not grid:
        problems.bad("io_search.grid", f"required: a mapping of I/O setting to the values to try; "
                     f"settings: {', '.join(IO_KNOBS)}")
        return None
    for key, values in grid.items():
        where = f"io_search.grid.{key}"
        if key not in IO_KNOBS:
            problems.bad(where, f"not an I/O setting.{did_you_mean(key, IO_KNOBS)} Known: {', '.join(IO_KNOBS)}.")
        elif key in IO_CONFIG_KNOBS and hints and key not in hints:
            problems.bad(where, f"{workload} has no {key} hyperparameter")
        elif not isinstance(values, list) or not values:
            problems.bad(where, "must be a non-empty list of values to try")
        else:
            for value in values:
                _io_value(problems, where, key, value, workload, check_data)
    return IOSearch(steps=steps, warmup_steps=warmup,
                    grid=tuple((k, tuple(vals)) for k, vals in grid.items() if isinstance(vals, list)))


def _io_value(problems: Problems, where: str, key: str, value, workload: str | None, check_data: bool) -> None:
    """One value of `io_search.grid.<key>`: each setting has its own kind of value."""
    if key == "data_path":
        if not isinstance(value, str):
            problems.bad(where, f"{value!r} is not a directory path")
        elif check_data and workload:
            readable_meta(problems, where, value, workload)
    elif key == "materialize":
        if not isinstance(value, bool) and value != "auto":
            problems.bad(where, f"{value!r} is not auto, true or false")
    elif key == "cpus_per_worker":
        if not is_number(value) or value <= 0:
            problems.bad(where, f"{value!r} is not a number > 0")
    elif key == "read_parallelism" and value is None:
        pass
    elif not is_int(value) or value < (1 if key in ("batch_size", "read_parallelism") else 0):
        problems.bad(where, f"{value!r} is not an integer >= {1 if key in ('batch_size', 'read_parallelism') else 0}")
